//! A command spelled to slip past word lists: quotes, backslashes, carets and empty
//! expansions that a shell removes (`w'h'o'am'i`, `c\at`, `who$()ami`, `i$@d`).
//! A word that holds one of them and, without them, is a command is a match.

/// Commands worth hiding (a shell's first word in injections).
const COMMANDS: &[&str] = &[
    "cat",
    "id",
    "whoami",
    "uname",
    "ls",
    "pwd",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "bash",
    "sh",
    "zsh",
    "python",
    "python3",
    "perl",
    "ruby",
    "php",
    "ping",
    "nslookup",
    "dig",
    "sleep",
    "rm",
    "chmod",
    "echo",
    "busybox",
    "telnet",
    "ifconfig",
    "ps",
    "env",
    "printenv",
    "base64",
    "netstat",
    "hostname",
    "passwd",
    "crontab",
    "socat",
    "nohup",
    "powershell",
    "cmd",
];

/// What a shell removes from inside a word.
const REMOVED: &[&str] = &["$()", "${}", "$@", "$*", "'", "\"", "\\", "^"];

/// Whether `plain` (decoded, lower case) has a command spelled with what a shell
/// removes.
pub fn spelled_command(plain: &[u8]) -> bool {
    let text = String::from_utf8_lossy(plain);
    text.split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&' | '`' | '<' | '>'))
        // Quotes around a whole word are prose (`the "id" field`), not evasion.
        .map(|word| word.trim_matches(|c| c == '\'' || c == '"'))
        .filter(|word| REMOVED.iter().any(|r| word.contains(r)))
        // One apostrophe inside a word is a contraction (`i'd`, `can't`).
        .filter(|word| {
            REMOVED.iter().any(|r| *r != "'" && word.contains(r)) || word.matches('\'').count() > 1
        })
        .any(|word| {
            let mut bare = word.to_owned();
            for r in REMOVED {
                bare = bare.replace(r, "");
            }
            // A path's last part counts: `/bin/c'a't`.
            let name = bare.rsplit('/').next().unwrap_or(&bare);
            bare.len() < word.len() && COMMANDS.contains(&name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_spelled_to_hide() {
        for v in [
            "w'h'o'am'i",
            "x;c\\at /etc/hosts",
            "who$()ami",
            "i$@d",
            "/bin/c\"a\"t",
            "p^ing",
        ] {
            assert!(spelled_command(v.as_bytes()), "{v}");
        }
        for v in [
            "o'brien",
            "it's",
            "i'd buy it",
            "so i'd say",
            "the \"id\" field",
            "don't cat",
            "whoami",
            "'ls'",
        ] {
            assert!(!spelled_command(v.as_bytes()), "{v}");
        }
    }
}
