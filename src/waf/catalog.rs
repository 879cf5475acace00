//! The rules themselves, by family (ids as the OWASP Core Rule Set numbers its
//! families; the patterns are tollgate's own). Paranoia 1 holds what is an attack
//! wherever it appears; paranoia 2 adds what ordinary users also write (rich text,
//! code, private addresses, bare SQL).

use super::rules::{Check, Rule, Scope, Severity, View};
use Severity::{Critical, Warning};

/// Commands an injection runs first that are rarely words of their own.
const COMMANDS: &str = concat!(
    r"(?:cat|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|ksh|dash|python[23]?|perl|ruby|",
    r"php|nslookup|busybox|telnet|ifconfig|printenv|base64|xxd|nohup|socat|mkfifo|tftp|chmod|",
    r"chown|useradd|passwd|crontab|gcc|netstat|lsof|killall|pkill|iptables|echo\s|dig\s)"
);
/// Commands that are also words (`| id |` is a Markdown table's header): only right
/// after a separator with nothing between, at the end of a value, or before another
/// separator.
const WORD_COMMANDS: &str = "(?:id|ls|pwd|ps|env|hostname|ping|sleep|dir|ver|reboot|who|w)";
/// A command's directory.
const BIN: &str = r"(?:/(?:usr/)?(?:local/)?s?bin/)";
/// Separators that start a command.
const SEPARATOR: &str = r"(?:[;&|`]|\$\(|\$\{)";

/// Names scanners give themselves in `User-Agent`.
#[rustfmt::skip]
const SCANNERS: &[&str] = &[
    "sqlmap", "nikto", "nmap", "nessus", "openvas", "acunetix", "netsparker", "w3af", "arachni",
    "havij", "zgrab", "masscan", "nuclei", "wpscan", "dirbuster", "gobuster", "ffuf", "wfuzz",
    "commix", "skipfish", "whatweb", "zmeu", "fimap", "jaeles", "morfeus", "paros", "webinspect",
    "appscan", "brutus", "hydra", "jorgee", "zap/", "burp", "dirb", "feroxbuster", "xsstrike",
    "interactsh", "qualys", "fuzz faster u fool",
];
/// Paths only scanners ask for.
#[rustfmt::skip]
const SCANNER_PATHS: &[&str] = &[
    "/nessus", "/appscan_fingerprint", "/acunetix-wvs-test", "/w00tw00t", "/nmaplowercheck",
    "/nikto-test",
];

/// A rule deciding by a pattern guarded by literals.
#[allow(clippy::too_many_arguments)]
const fn pattern(
    id: u32,
    class: &'static str,
    paranoia: u8,
    severity: Severity,
    view: View,
    literals: &'static [&'static str],
    pattern: &'static str,
    message: &'static str,
) -> Rule {
    Rule {
        id,
        class,
        severity,
        paranoia,
        scope: Scope::All,
        check: Check::Pattern {
            view,
            literals,
            pattern,
        },
        message,
    }
}

/// A critical rule deciding by `check`.
const fn native(
    id: u32,
    class: &'static str,
    paranoia: u8,
    check: Check,
    message: &'static str,
) -> Rule {
    Rule {
        id,
        class,
        severity: Critical,
        paranoia,
        scope: Scope::All,
        check,
        message,
    }
}

const fn scoped(rule: Rule, scope: Scope) -> Rule {
    Rule { scope, ..rule }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Every rule, in id order. Called once per process (`Engine::shared`): the two
/// patterns built from parts are leaked once.
#[rustfmt::skip]
pub fn all() -> Vec<Rule> {
    let unix_command = leak(format!(
        r"{SEPARATOR}\s*{BIN}?(?:{COMMANDS}(?:\s|$|[;&|<>`)/])|(?:rm|ls|ping|ps|cat|id|kill)\s+-[a-z]+)"
    ));
    let unix_word_command = leak(format!(
        r"(?:(?:[;`]|\$\(|&&|\|\|)\s*{BIN}?{WORD_COMMANDS}(?:$|[;&|<>`)])|[|&]{BIN}?{WORD_COMMANDS}(?:$|[;&|<>`)])|[|&]\s*{BIN}?{WORD_COMMANDS}\s*$)"
    ));
    let mut rules = vec![
        // 913: scanners.
        scoped(native(913100, "scanner", 1, Check::Literals { view: View::Plain, literals: SCANNERS },
            "a security scanner's user agent"), Scope::UserAgent),
        scoped(pattern(913110, "scanner", 1, Critical, View::Decoded, &["acunetix", "x-scanner", "x-wipp", "netsparker", "burp"],
            r"(?mi)^(?:acunetix-[a-z-]+|x-scanner|x-wipp|x-netsparker[a-z-]*|x-burp[a-z-]*)$",
            "a header only security scanners send"), Scope::HeaderNames),
        scoped(native(913120, "scanner", 1, Check::Literals { view: View::Plain, literals: SCANNER_PATHS },
            "a path only security scanners ask for"), Scope::Path),
        // 920, 921: protocol.
        scoped(pattern(920200, "protocol", 1, Critical, View::Plain, &["bytes"],
            r"^bytes\s*=\s*(?:[^,]*,){5,}",
            "a Range header with many ranges (a denial of service)"), Scope::Header("range")),
        scoped(pattern(920201, "protocol", 1, Critical, View::Plain, &["bytes"],
            r"^bytes\s*=.*-\s*\d{16,}",
            "a Range end past 2^53 (integer overflow, MS15-034)"), Scope::Header("range")),
        scoped(pattern(920270, "protocol", 1, Critical, View::Decoded, &["\0"],
            r"\x00",
            "a NUL byte in a parameter, header or cookie"), Scope::NotBody),
        pattern(920480, "protocol", 1, Critical, View::Plain, &["utf-7", "utf7"],
            r#"charset\s*=\s*['"]?utf-?7"#,
            "the UTF-7 charset (an encoding that hides markup)"),
        pattern(921110, "protocol", 1, Critical, View::Plain, &["http/"],
            r"\b(?:get|post|put|delete|head|options|patch|connect|trace)\s+\S+\s+http/\d",
            "an HTTP request line inside a value (request smuggling or splitting)"),
        scoped(pattern(921120, "protocol", 1, Critical, View::Decoded, &["\r", "\n"],
            r"(?i)[\r\n]\s*(?:set-cookie|location|content-(?:type|length)|transfer-encoding|host|refresh|x-[a-z0-9-]+|access-control-[a-z-]+)\s*:",
            "CR/LF followed by a header (response splitting, header injection)"), Scope::NotBody),
        native(921160, "protocol", 1, Check::TruncatedLineBreak,
            "characters that truncate to CR or LF (U+010A, U+560D, ...) before a header or request line"),
        scoped(pattern(921150, "protocol", 2, Critical, View::Decoded, &["\r", "\n"],
            r"[\r\n]",
            "CR or LF in a parameter, header or cookie"), Scope::NotBody),
        // 930: local files.
        pattern(930100, "lfi", 1, Critical, View::Plain, &[".."],
            r"(?:^|[/\\])\.{2,}(?:;[^/\\]*)?(?:[/\\]|$)",
            "path traversal (../, ..;/, ...\\)"),
        pattern(930120, "lfi", 1, Critical, View::Cmd,
            &["etc/", "proc/", "win.ini", "boot.ini", "system.ini", "system32", ".ssh", ".htaccess", ".htpasswd",
              "web.config", ".env", "wp-config", ".aws", "id_rsa", "/root/", "/var/log/", "web-inf", "meta-inf"],
            r"(?:/var/log/(?:apache2?|httpd|nginx|auth\.log|syslog|messages|secure)|etc/(?:passwd|shadow|gshadow|master\.passwd|sudoers|crontab)\b|(?:web|meta)-inf/|system\.ini|proc/(?:self|\d+)/(?:environ|cmdline|maps|fd|cwd|exe|status|mem)|win\.ini|boot\.ini|system32[/\\]|\.ssh/|\bid_rsa\b|\.htaccess|\.htpasswd|web\.config|(?:^|/)\.env(?:$|[/.?#])|wp-config\.php|\.aws/credentials|^/root/)",
            "access to an operating-system or secret file"),
        pattern(930121, "lfi", 2, Critical, View::Plain, &["/var/", "/etc/", "/usr/"],
            r"(?:^|[\s=:])/(?:var/(?:log|lib|run|www)|etc|usr/(?:local/)?etc)/",
            "a system directory"),
        scoped(pattern(930130, "lfi", 1, Critical, View::Plain,
            &["/.git", "/.svn", "/.hg", "/.bzr", "/.env", "/.ds_store", "/.aws", "/.ssh", "/.docker", "/.npmrc", "/.idea"],
            r"/\.(?:git|svn|hg|bzr|env|ds_store|aws|ssh|docker|npmrc|idea)(?:/|$|\.)",
            "a version-control, editor or secrets directory"), Scope::Path),
        // 932: command injection.
        pattern(932100, "rce", 1, Critical, View::Cmd, &[";", "|", "&", "`", "$(", "${"],
            unix_command,
            "a Unix command after a command separator"),
        pattern(932105, "rce", 1, Critical, View::Cmd, &[";", "|", "&", "`", "$("],
            unix_word_command,
            "a short Unix command after a command separator"),
        pattern(932110, "rce", 1, Critical, View::Cmd,
            &["cmd", "powershell", "net user", "ipconfig", "systeminfo", "tasklist", "certutil", "bitsadmin", "wmic", "dir ", "type "],
            r"(?:^|[;&|]|\$\()\s*(?:cmd(?:\.exe)?\s*/[ck]|powershell(?:\.exe)?\s+-|pwsh\s+-|net\s+(?:user|localgroup)\b|ipconfig\b|systeminfo\s*(?:$|[;&|])|tasklist\b|certutil\b|bitsadmin\b|wmic\b|dir\s+[a-z]:|type\s+[a-z]:)",
            "a Windows command after a command separator"),
        pattern(932120, "rce", 1, Critical, View::Plain,
            &["invoke-", "iex", "downloadstring", "net.webclient", "-encodedcommand", "frombase64string"],
            r"(?:invoke-(?:expression|webrequest|restmethod)|\biex\s*\(|downloadstring|new-object\s+(?:system\.)?net\.webclient|-encodedcommand\b|frombase64string)",
            "a PowerShell command"),
        pattern(932140, "rce", 1, Critical, View::Plain, &["ifs", "{"],
            r"(?:\$\{?ifs\b|\{(?:cat|ls|id|wget|curl|nc|bash|sh|echo|rm|ping),[^}\s][^}]*\})",
            "shell evasion (${IFS}, brace expansion)"),
        pattern(932150, "rce", 1, Critical, View::Cmd, &["bin/", "/dev/"],
            r"(?:^|[^!a-z0-9_.~-])/(?:usr/(?:local/)?)?s?bin/(?:(?:ba|z|k|da)?sh\s*-[ic]|(?:nc|ncat|netcat|busybox|wget|curl|python[23]?|perl|id|cat|whoami|uname)\s+\S)|/dev/(?:tcp|udp)/",
            "a Unix shell or tool by its path, or a shell's network device"),
        native(932160, "rce", 1, Check::SpelledCommand,
            "a command spelled with quotes, backslashes or empty expansions (w'h'o'am'i)"),
        pattern(932170, "rce", 1, Critical, View::Plain, &["()"],
            r"^\s*\(\s*\)\s*\{",
            "Shellshock: a function definition in a value"),
        pattern(932190, "rce", 1, Critical, View::Plain, &["<!--"],
            r"<!--\s*#\s*(?:exec|include|echo|config|fsize|flastmod|printenv|set)\b",
            "a server-side include"),
        pattern(932200, "rce", 1, Critical, View::Plain, &["?"],
            r"/[a-z*]*\?[?*a-z]*/[?*a-z]*[?*]",
            "a command path spelled with globs (/???/??t)"),
        pattern(932230, "rce", 2, Critical, View::Plain, &["`"],
            r"`\s*[a-z]+[^`]*`",
            "a command in backticks"),
        pattern(932240, "rce", 1, Critical, View::Plain, &["${", "$("],
            r"\$\{[a-z_]+:-?\d+(?::\d+)?\}|\$\(\s*\)|\$\{\s*\}",
            "a shell expansion that spells characters (${HOME:0:1}, $())"),
        pattern(932250, "rce", 1, Critical, View::Plain, &["$'", "$"],
            r"\$'[^']*\\(?:x[0-9a-f]{2}|[0-7]{3})|(?:&&|\|\||;)\s*\$[a-z_]\w*\s*(?:$|[;&|`])",
            "shell quoting that spells a command ($'\\x..'), or a variable run as one"),
        // 933: PHP.
        pattern(933100, "php", 1, Critical, View::Plain, &["<?"],
            r"<\?(?:php\b|=|\s)",
            "PHP opening tag"),
        pattern(933110, "php", 1, Critical, View::Plain,
            &["php://", "phar://", "zip://", "data://", "expect://", "glob://", "zlib://", "ogg://", "rar://"],
            r"\b(?:php|phar|zip|data|expect|glob|compress\.zlib|zlib|ogg|rar)://",
            "a PHP stream wrapper"),
        pattern(933150, "php", 1, Critical, View::Plain,
            &["phpinfo", "shell_exec", "passthru", "proc_open", "popen", "pcntl_exec", "gzinflate", "str_rot13",
              "create_function", "call_user_func", "base64_decode", "file_put_contents", "assert", "move_uploaded_file"],
            r"\b(?:phpinfo|shell_exec|passthru|proc_open|popen|pcntl_exec|gzinflate|str_rot13|create_function|call_user_func(?:_array)?|base64_decode|file_put_contents|assert|move_uploaded_file)\s*\(",
            "a PHP function used to run code"),
        scoped(pattern(933151, "php", 1, Critical, View::Plain,
            &["call_user_func", "phpinfo", "shell_exec", "passthru", "proc_open", "pcntl_exec", "create_function", "invokefunction"],
            r"^(?:call_user_func(?:_array)?|phpinfo|shell_exec|passthru|proc_open|pcntl_exec|create_function)$|\\think\\app/invokefunction",
            "a PHP code-running function named by a parameter"), Scope::NotBody),
        pattern(933160, "php", 2, Critical, View::Plain,
            &["system", "exec", "eval", "include", "require", "fopen", "file_get_contents", "unserialize"],
            r"\b(?:system|exec|eval|include(?:_once)?|require(?:_once)?|fopen|file_get_contents|unserialize)\s*\(",
            "a PHP function that reads files or runs code"),
        pattern(933170, "php", 1, Critical, View::Plain, &[":{"],
            r#"(?:\b[oc]:\d+:"[a-z0-9_\\]+":\d+:\{|\ba:\d+:\{(?:[si]:\d+[:;]))"#,
            "a serialized PHP object or array"),
        pattern(933180, "php", 1, Critical, View::Plain, &["$_"],
            r"\$_(?:get|post|cookie|request|server|env|files|session)\b",
            "a PHP superglobal"),
        pattern(933190, "php", 1, Critical, View::Plain, &["{"],
            r"\{\s*(?:system|exec|passthru|shell_exec|popen|eval|php_eval)\s*\(|\{/?php\}|\{\$smarty\.",
            "a Smarty tag that runs PHP"),
        // 934: Node.js, server-side requests, templates, NoSQL.
        pattern(934100, "node", 1, Critical, View::Plain,
            &["child_process", "mainmodule", "process.", "require", "global.process", "constructor("],
            r#"(?:child_process|process\.mainmodule|process\.binding|global\.process|require\s*\(\s*['"`](?:child_process|fs|net|vm|os)['"`]\s*\)|\.constructor\s*\(\s*['"`]return)"#,
            "Node.js code that reaches the process or the file system"),
        pattern(934110, "ssrf", 1, Critical, View::Plain,
            &["169.254.169.254", "metadata", "100.100.100.200", "fd00:ec2::254", "instance-data"],
            r"(?:169\.254\.169\.254|metadata\.google\.internal|metadata\.azure\.com|100\.100\.100\.200|fd00:ec2::254|instance-data\b|/computemetadata/|/latest/meta-data)",
            "a cloud metadata service"),
        native(934120, "ssrf", 1, Check::Ssrf { private_networks: false },
            "a URL to a link-local address, an inside address spelled to hide it or with a service's port, or a local-only scheme"),
        native(934125, "ssrf", 2, Check::Ssrf { private_networks: true },
            "a URL to this host or a private network"),
        pattern(934130, "node", 1, Critical, View::Plain, &["__proto__", "prototype"],
            r#"(?:__proto__|constructor\s*\]?\s*(?:\[\s*['"]?|\.|/)\s*prototype)"#,
            "JavaScript prototype pollution"),
        pattern(934140, "node", 1, Critical, View::Plain, &["{{", "${", "<%", "#{", "<#", "?new"],
            r"(?:\{\{[^}]{0,80}(?:constructor|__class__|__globals__|__import__|__builtins__|__subclasses__|config\.|self\.|_self\b|request\.application|lipsum|cycler|joiner|namespace|system|exec|passthru|registerundefinedfilter|getfilter)|\{\{\s*\d+\s*[*+]\s*\d+\s*\}\}|\$\{\s*\d+\s*[*+]\s*\d+\s*\}|<%=?[^%]{0,80}(?:require|process|system|exec)|#\{\s*\d+\s*[*+]\s*\d+\s*\}|<#assign\b|freemarker\.template\.utility|\?new\s*\(\s*\)|\$\{[^}]{0,80}(?:os\.system|os\.popen|subprocess|__import__|self\.module|getruntime|\.exec\s*\())",
            "server-side template injection"),
        pattern(934150, "node", 1, Critical, View::Plain, &["$"],
            r#"(?:^|[\[/"'])\$(?:where|ne|gt|gte|lt|lte|nin|in|regex|exists|expr|function|accumulator|or|and|not|nor|elemmatch)(?:$|[\]"'/])"#,
            "a MongoDB query operator (NoSQL injection)"),
        // 941: XSS.
        scoped(native(941100, "xss", 1, Check::Xss { corroborated: true },
            "XSS (libinjection, with active content)"), Scope::NotStructuredHeaders),
        scoped(native(941101, "xss", 2, Check::Xss { corroborated: false },
            "XSS (libinjection)"), Scope::NotStructuredHeaders),
        pattern(941110, "xss", 1, Critical, View::Plain, &["<script"],
            r"<script[\s>/]",
            "a script tag"),
        pattern(941120, "xss", 1, Critical, View::Plain, &["<"],
            r#"<[a-z][^>]*[\s"'/]on[a-z]{3,25}[^a-z0-9=>]{0,40}="#,
            "an event handler attribute"),
        pattern(941130, "xss", 1, Critical, View::Plain, &["script", "ript:", "data:"],
            r#"(?:(?:^|[\s"'=(`/])(?:j\s?a\s?v\s?a|v\s?b|l\s?i\s?v\s?e)\s?s\s?c\s?r\s?i\s?p\s?t\s?:\s*(?:[/\[('"`%\\{!+~-]|[a-z_$][\w$.]*\s*[(`=\[])|data:(?:text/html|image/svg\+xml|application/(?:x-)?javascript))"#,
            "a script URL"),
        pattern(941160, "xss", 1, Critical, View::Plain,
            &["<object", "<embed", "<applet", "<base", "<frameset", "<isindex", "<xss", "<meta"],
            r"<(?:object|embed|applet|base|frameset|isindex|xss)[\s/>]|<meta[^>]*http-equiv",
            "an HTML tag that loads code or redirects"),
        pattern(941161, "xss", 2, Critical, View::Plain,
            &["<iframe", "<svg", "<math", "<link", "<form", "<style", "<template", "<video", "<audio", "<body", "<marquee", "<details", "<input"],
            r"<(?:iframe|svg|math|link|form|style|template|video|audio|body|marquee|details|input)[\s/>]",
            "an HTML tag that loads content"),
        pattern(941180, "xss", 1, Critical, View::Plain,
            &["document.", "fromcharcode", "srcdoc", "expression(", "-moz-binding"],
            r"(?:document\.(?:cookie|domain)|string\.fromcharcode|\bsrcdoc\s*=|expression\s*\(|-moz-binding)",
            "script reaching cookies or building code"),
        pattern(941181, "xss", 2, Critical, View::Plain, &["document.", "window.", "innerhtml"],
            r"(?:document\.(?:write|location)|window\.(?:location|open)|\.innerhtml\s*=)",
            "script writing the page or navigating"),
        pattern(941200, "xss", 1, Critical, View::Plain, &["alert", "prompt", "confirm", "eval", "document.", "fetch", "import"],
            r#"['"`]\s*[;)]\s*(?:alert|prompt|confirm|eval|fetch|import)\s*[(`]|['"`]\s*[;)]\s*document\."#,
            "a JavaScript string broken out of to run a call"),
        pattern(941190, "xss", 2, Warning, View::Plain, &["alert", "prompt", "confirm", "eval", "atob"],
            r"\b(?:alert|prompt|confirm|eval|atob)\s*(?:\(|`)",
            "a JavaScript call attacks probe with"),
        // 942: SQL injection.
        scoped(native(942100, "sqli", 1, Check::Sqli { corroborated: true },
            "SQL injection (libinjection, with SQL syntax)"), Scope::NotStructuredHeaders),
        scoped(native(942101, "sqli", 2, Check::Sqli { corroborated: false },
            "SQL injection (libinjection)"), Scope::NotStructuredHeaders),
        pattern(942140, "sqli", 1, Critical, View::Sql,
            &["information_schema", "mysql.", "pg_catalog", "pg_shadow", "sysobjects", "syscolumns", "sqlite_master",
              "xp_cmdshell", "sys.", "msysaccessobjects", "all_tables", "user_tables"],
            r"\b(?:information_schema|mysql\.(?:user|db)|pg_catalog|pg_shadow|sysobjects|syscolumns|sqlite_master|xp_cmdshell|sys\.(?:objects|tables|columns|databases)|msysaccessobjects|all_tables|user_tables)\b",
            "a database's system tables"),
        pattern(942160, "sqli", 1, Critical, View::Sql, &["sleep", "benchmark", "waitfor", "pg_sleep", "dbms_pipe", "randomblob"],
            r"(?:^|[^.\w]|dbms_lock\.)(?:sleep|pg_sleep|benchmark|randomblob)\s*\(\s*\d|\bwaitfor\s+(?:delay|time)\b|dbms_pipe\.receive_message",
            "a time-based SQL probe"),
        pattern(942180, "sqli", 1, Critical, View::Sql, &["or ", "and ", "having ", "where ", "when "],
            r#"\b(?:or|and|xor|having|where|when)\s+\(?\s*(?:\d+\)?\s*(?:=|<>|!=|<=>|<|>|\blike\b)\s*\(?\d+\b|'[^']*'\s*(?:=|<>|!=|\blike\b)\s*'|"[^"]*"\s*(?:=|<>|!=|\blike\b)\s*")"#,
            "an SQL tautology (or 1=1, and 'a'='a')"),
        pattern(942190, "sqli", 1, Critical, View::Sql, &["union"],
            r"\bunion\b(?:\s+(?:all|distinct))?\s*\(?\s*select\b",
            "UNION SELECT"),
        pattern(942200, "sqli", 1, Critical, View::Sql,
            &["load_file", "outfile", "dumpfile", "group_concat", "extractvalue", "updatexml", "@@version", "version()", "current_user", "utl_http", "utl_inaddr"],
            r"\b(?:load_file\s*\(|into\s+(?:out|dump)file\b|group_concat\s*\(|extractvalue\s*\(|updatexml\s*\(|utl_(?:http|inaddr)\.)|@@version\b|\bversion\s*\(\s*\)|\bcurrent_user\s*\(",
            "an SQL function attacks read data with"),
        pattern(942210, "sqli", 1, Critical, View::Sql, &["drop", "alter", "truncate", "shutdown", "exec", "declare"],
            r"(?:;\s*(?:drop|alter|truncate)\s+(?:table|database|schema|procedure|function|view|index|user)\b|;\s*(?:shutdown\s*(?:$|;|with\b)|exec(?:ute)?\s+(?:xp_|sp_|master\.)|declare\s+@))",
            "a stacked SQL statement"),
        pattern(942211, "sqli", 2, Critical, View::Sql, &["drop", "alter", "truncate"],
            r"\b(?:drop|alter|truncate)\s+(?:table|database|schema|column|index|view|user)\b",
            "a schema-changing SQL statement"),
        pattern(942220, "sqli", 1, Critical, View::Plain, &["/*!"],
            r"/\*!\d*",
            "a MySQL executable comment"),
        pattern(942230, "sqli", 2, Critical, View::Sql, &["select"],
            r"\bselect\b.{1,200}?\bfrom\b",
            "SELECT ... FROM"),
        pattern(942240, "sqli", 2, Critical, View::Sql, &["char(", "chr(", "concat", "0x"],
            r"\b(?:char|chr)\s*\(\s*\d+\s*(?:,\s*\d+\s*)+\)|\bconcat(?:_ws)?\s*\(|\b0x[0-9a-f]{8,}\b",
            "SQL string building"),
        pattern(942250, "sqli", 2, Critical, View::Sql, &["'", "\""],
            r#"['"]\s*(?:or|and|xor|\|\||&&)\s*['"]?\s*[\w'"(]+\s*(?:=|<|>|like\b|is\b)"#,
            "a quoted tautology"),
        // 944: Java.
        pattern(944100, "java", 1, Critical, View::Plain, &["%{", "_memberaccess", "@java", "#context", "ognl", "#request", "#_"],
            r"(?:%\{[^}]*(?:#|@|\()|#_memberaccess|@java\.|#context\[|ognlcontext|#request\[|\(#[a-z_]+=)",
            "an OGNL expression (Struts)"),
        pattern(944110, "java", 1, Critical, View::Plain,
            &["java.lang", "javax.script", "java.io", "getruntime", "processbuilder", "forname", "t(java"],
            r"(?:java\.lang\.(?:runtime|processbuilder|reflect|class|system|thread)|javax\.script|java\.io\.(?:file|objectinputstream)|getruntime\s*\(|\bprocessbuilder\b|class\.forname|\bt\s*\(\s*java\.)",
            "Java classes that run commands or reflect"),
        pattern(944150, "java", 1, Critical, View::Plain, &["${"],
            r"\$\{[^}]{0,60}(?:jndi|lower:|upper:|::-|env:|sys:|java:|date:|base64:|ctx:|main:|bundle:|\$\{)",
            "a Log4j lookup (Log4Shell)"),
        pattern(944160, "java", 1, Critical, View::Plain,
            &["jdbcrowsetimpl", "commons.collections", "templatesimpl", "c3p0", "bsh.interpreter", "logback", "springframework.beans", "javax.management", "xbean", "groovy.util"],
            r"(?:com\.sun\.rowset\.jdbcrowsetimpl|org\.apache\.commons\.collections[0-9]?\.functors|xsltc\.trax\.templatesimpl|com\.mchange\.v2\.c3p0|bsh\.interpreter|ch\.qos\.logback\.core\.db|org\.springframework\.beans\.factory\.config|javax\.management\.|org\.apache\.xbean\.propertyeditor|groovy\.util\.expando)",
            "a Java deserialization gadget class (Fastjson, Jackson polymorphic types)"),
        pattern(944200, "java", 1, Critical, View::Plain, &["ro0ab", "aced0005"],
            r"(?:^|[^a-z0-9+/])ro0ab|\baced0005",
            "a serialized Java object"),
        pattern(944210, "java", 1, Critical, View::Plain, &["classloader", "getclass", "class.module"],
            r"(?:class\.module\.classloader|\bclass\.classloader|\.getclass\s*\(\s*\)|classloader\.(?:resources|urls|parent))",
            "reaching Java's class loader (Spring4Shell)"),
    ];
    rules.sort_by_key(|r| r.id);
    rules
}
