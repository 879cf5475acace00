//! The file paths a config names, in two kinds: the files it reads (certificates,
//! keys, CA bundles, IP lists, body schemas, JWT keys and JWKS files: what a document
//! needs beside it to mean the same elsewhere) and the paths the process writes (pid
//! file, upgrade socket, log files, the fleet's cache, the ACME storage). `config::load` makes both absolute; nothing here
//! touches the file system.

use std::path::PathBuf;

use super::{AcmeStorage, AuthSection, LogTarget, RawConfig};

impl RawConfig {
    /// Every file the config reads, in the order of its sections.
    pub fn input_files_mut(&mut self) -> Vec<&mut PathBuf> {
        let mut files = Vec::new();
        for tls in self.listeners.values_mut().filter_map(|l| l.tls.as_mut()) {
            for c in &mut tls.certificates {
                files.push(&mut c.cert);
                files.push(&mut c.key);
            }
            files.extend(tls.client_ca.as_mut());
        }
        for tls in self.upstreams.values_mut().filter_map(|u| u.tls.as_mut()) {
            files.extend(
                [&mut tls.ca, &mut tls.client_cert, &mut tls.client_key]
                    .into_iter()
                    .flatten(),
            );
        }
        files.extend(self.ip_lists.values_mut().filter_map(|l| l.file.as_mut()));
        files.extend(
            self.routes
                .iter_mut()
                .filter_map(|r| r.validate.as_mut().and_then(|v| v.body_schema.as_mut())),
        );
        files.extend(self.acme.as_mut().and_then(|a| a.ca_file.as_mut()));
        for target in [&mut self.server.access_log, &mut self.server.security_log] {
            if let LogTarget::Syslog(syslog) = target {
                files.extend(syslog.ca_file.as_mut());
            }
        }
        if let Some(tls) = self.fleet.as_mut().and_then(|f| f.tls.as_mut()) {
            files.push(&mut tls.ca);
            files.extend([&mut tls.cert, &mut tls.key].into_iter().flatten());
        }
        for section in self.auth.values_mut() {
            if let AuthSection::Jwt(j) = section {
                files.extend(
                    [&mut j.public_key_file, &mut j.jwks_file]
                        .into_iter()
                        .flatten(),
                );
            }
        }
        files
    }

    /// Every path the process writes.
    pub fn output_paths_mut(&mut self) -> Vec<&mut PathBuf> {
        let server = &mut self.server;
        let mut paths = vec![&mut server.pid_file, &mut server.upgrade_socket];
        for target in [
            &mut server.access_log,
            &mut server.security_log,
            &mut server.process_log,
        ] {
            if let LogTarget::File(p) = target {
                paths.push(p);
            }
        }
        paths.extend(self.fleet.as_mut().map(|f| &mut f.cache));
        if let Some(AcmeStorage::Dir(dir)) = self.acme.as_mut().map(|a| &mut a.storage) {
            paths.push(dir);
        }
        paths
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_file;
    use std::path::Path;

    /// The files each example config reads, as `load_file` made them absolute.
    fn inputs(example: &str) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("conf")
            .join(example);
        let mut raw = load_file(&path).expect("example is valid").raw;
        let conf = path.parent().expect("conf dir").to_path_buf();
        raw.input_files_mut()
            .into_iter()
            .map(|p| {
                assert!(p.is_file(), "{} is no file", p.display());
                p.strip_prefix(&conf)
                    .expect("next to the example")
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn every_file_a_config_reads_is_listed() {
        assert_eq!(
            inputs("auth.toml"),
            ["keys/jwks.json", "keys/legacy-rsa.pub.pem"]
        );
        assert_eq!(inputs("edge.toml"), ["lists/blocked.txt"]);
        assert!(inputs("protections.toml").contains(&"schemas/order.json".to_owned()));
        let tls = inputs("tls.toml");
        assert!(tls.contains(&"certs/clients-ca.pem".to_owned()), "{tls:?}");
        assert!(tls.iter().any(|f| f.ends_with(".key")), "{tls:?}");
        assert!(inputs("tollgate.toml").is_empty());
    }

    #[test]
    fn outputs_are_the_pid_file_socket_and_log_files() {
        let text = "[server]\npid_file = \"t.pid\"\naccess_log = { file = \"a.log\" }\n[listeners.a]\naddr = \"127.0.0.1:1\"\n";
        let mut raw = crate::config::load_str(text, "t").expect("valid").raw;
        let outputs: Vec<String> = raw
            .output_paths_mut()
            .into_iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(outputs[0], "t.pid");
        assert_eq!(outputs[2], "a.log");
        assert_eq!(outputs.len(), 3);
    }
}
