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

/// Whether `plain` (decoded, lower case) has a command spelled with what a shell
/// removes. Only the stretches between ASCII separators that hold such a character
/// are read as text (prose's single apostrophes cost a byte scan).
pub fn spelled_command(plain: &[u8]) -> bool {
    plain
        .split(|&b| b.is_ascii_whitespace() || is_separator(b))
        .filter(|stretch| may_hide(stretch))
        .any(|stretch| spelled_in(&String::from_utf8_lossy(stretch)))
}

fn is_separator(b: u8) -> bool {
    matches!(b, b';' | b'|' | b'&' | b'`' | b'<' | b'>')
}

/// Whether a word in `stretch` may hold what a shell removes: a quote, backslash,
/// caret or dollar, or two apostrophes (one is a contraction).
fn may_hide(stretch: &[u8]) -> bool {
    stretch
        .iter()
        .any(|b| matches!(b, b'"' | b'\\' | b'^' | b'$'))
        || stretch.iter().filter(|&&b| b == b'\'').count() > 1
}

fn spelled_in(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c.is_ascii() && is_separator(c as u8))
        // Quotes around a whole word are prose (`the "id" field`), not evasion.
        .map(|word| word.trim_matches(|c| c == '\'' || c == '"'))
        .any(|word| hides_command(word.as_bytes()))
}

/// Whether `word` is a command once what a shell removes is removed, and holds more
/// of it than one apostrophe (a contraction: `i'd`, `can't`).
fn hides_command(word: &[u8]) -> bool {
    let mut bare = Vec::with_capacity(word.len());
    let (mut apostrophes, mut others) = (0, 0);
    let mut i = 0;
    while i < word.len() {
        let removed = match &word[i..] {
            [b'$', b'(', b')', ..] | [b'$', b'{', b'}', ..] => 3,
            [b'$', b'@' | b'*', ..] => 2,
            [b'"' | b'\\' | b'^', ..] => 1,
            [b'\'', ..] => {
                apostrophes += 1;
                1
            }
            _ => 0,
        };
        match removed {
            0 => bare.push(word[i]),
            _ => others += usize::from(word[i] != b'\''),
        }
        i += removed.max(1);
    }
    // A path's last part counts: `/bin/c'a't`.
    let name = bare.rsplit(|&b| b == b'/').next().unwrap_or(&bare);
    (others > 0 || apostrophes > 1) && COMMANDS.iter().any(|c| c.as_bytes() == name)
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
