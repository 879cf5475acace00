//! Tests of the path normalizer: each rule by example, then properties over generated
//! paths (a seeded generator: the same cases on every run).

use super::*;

const DEFAULT: PathRules = PathRules {
    escaped_slashes: EscapedSlashes::Reject,
    merge_slashes: true,
    double_encoding: DoubleEncoding::Reject,
};

fn rules(escaped_slashes: EscapedSlashes, merge_slashes: bool, keep_double: bool) -> PathRules {
    PathRules {
        escaped_slashes,
        merge_slashes,
        double_encoding: match keep_double {
            true => DoubleEncoding::Keep,
            false => DoubleEncoding::Reject,
        },
    }
}

fn norm(raw: &str) -> Result<String, PathError> {
    normalize(raw.as_bytes(), &DEFAULT)
}

#[test]
fn unreserved_escapes_are_decoded_and_the_rest_upper_cased() {
    assert_eq!(
        norm("/%61dmin/%7Ex%2d%5F%2E1").as_deref(),
        Ok("/admin/~x-_.1")
    );
    assert_eq!(norm("/a%3bb%3F%20").as_deref(), Ok("/a%3Bb%3F%20"));
    assert_eq!(norm("/caf\u{e9}").as_deref(), Ok("/caf%C3%A9"));
    assert_eq!(norm("/a|b\"c").as_deref(), Ok("/a%7Cb%22c"));
    assert_eq!(norm("/").as_deref(), Ok("/"));
}

#[test]
fn escaped_slashes_follow_the_setting() {
    for raw in ["/admin%2fx", "/admin%2Fx", "/admin%5cx", "/admin\\x"] {
        assert_eq!(norm(raw), Err(PathError::EscapedSlash), "{raw}");
        let decode = rules(EscapedSlashes::Decode, true, false);
        assert_eq!(
            normalize(raw.as_bytes(), &decode).as_deref(),
            Ok("/admin/x"),
            "{raw}"
        );
    }
    let keep = rules(EscapedSlashes::Keep, true, false);
    let kept = |raw: &str| normalize(raw.as_bytes(), &keep);
    assert_eq!(kept("/a%2fb").as_deref(), Ok("/a%2Fb"));
    assert_eq!(kept("/a\\b%5c").as_deref(), Ok("/a%5Cb%5C"));
    assert!(!has_prefix("/admin%2Fx", "/admin"), "kept: no boundary");
    let decode = rules(EscapedSlashes::Decode, true, false);
    assert_eq!(
        normalize(b"/pub/..%2fadmin/x", &decode),
        Err(PathError::DotSegment)
    );
    assert_eq!(
        normalize(b"/pub\\..\\admin", &decode),
        Err(PathError::DotSegment)
    );
    assert_eq!(kept("/pub/..%2Fadmin"), Err(PathError::DotSegment));
}

#[test]
fn slashes_are_merged_unless_told_otherwise() {
    assert_eq!(norm("//admin///x//").as_deref(), Ok("/admin/x/"));
    let keep = rules(EscapedSlashes::Reject, false, false);
    assert_eq!(normalize(b"//admin//x", &keep).as_deref(), Ok("//admin//x"));
    let decode = rules(EscapedSlashes::Decode, true, false);
    assert_eq!(normalize(b"/%2F/admin", &decode).as_deref(), Ok("/admin"));
}

#[test]
fn dot_segments_are_refused_however_spelled() {
    for raw in [
        "/a/../b",
        "/./x",
        "/x/.",
        "/x/..",
        "/%2e%2E/x",
        "/.%2e/x",
        "/..;/admin",
        "/.;x=1/y",
        "/..%3Bx/y",
        "/pub/..%20/admin",
        "/pub/.../admin",
        "/pub/.%20./admin",
    ] {
        assert_eq!(norm(raw), Err(PathError::DotSegment), "{raw}");
    }
    assert_eq!(norm("/%252e%252e/x"), Err(PathError::DoubleEncoded));
    let keep_double = rules(EscapedSlashes::Reject, true, true);
    for raw in ["/%252e%252e/x", "/%25252e/x", "/.%252E/x"] {
        assert_eq!(
            normalize(raw.as_bytes(), &keep_double),
            Err(PathError::DotSegment),
            "{raw}"
        );
    }
    assert_eq!(
        normalize(b"/%252525252e/x", &keep_double),
        Err(PathError::DoubleEncoded),
        "five levels deep"
    );
    // What a twice-decoding upstream would read is held to the same rules.
    assert_eq!(
        normalize(b"/pub%252Fadmin", &keep_double),
        Err(PathError::EscapedSlash)
    );
    assert_eq!(
        normalize(b"/a%2500", &keep_double),
        Err(PathError::ControlCharacter)
    );
    let keep_all = rules(EscapedSlashes::Keep, true, true);
    assert_eq!(
        normalize(b"/pub%252Fx", &keep_all).as_deref(),
        Ok("/pub%252Fx")
    );
    assert_eq!(
        normalize(b"/..%252Fx", &keep_all),
        Err(PathError::DotSegment)
    );
    for fine in [
        "/a..b/.x/x./.a.",
        "/v1.2/file.tar.gz",
        "/a%20b.txt",
        "/%20/x",
    ] {
        assert_eq!(norm(fine).as_deref(), Ok(fine), "{fine}");
    }
}

#[test]
fn nul_controls_bad_escapes_and_double_encoding_are_refused() {
    assert_eq!(norm("/a%00b"), Err(PathError::ControlCharacter));
    assert_eq!(norm("/a%0ab"), Err(PathError::ControlCharacter));
    assert_eq!(norm("/a%7Fb"), Err(PathError::ControlCharacter));
    assert_eq!(norm("/a\tb"), Err(PathError::ControlCharacter));
    assert_eq!(norm("/a%"), Err(PathError::BadEscape));
    assert_eq!(norm("/a%4"), Err(PathError::BadEscape));
    assert_eq!(norm("/a%zz"), Err(PathError::BadEscape));
    assert_eq!(norm("/%u002e"), Err(PathError::BadEscape));
    assert_eq!(norm("/a%2541"), Err(PathError::DoubleEncoded));
    assert_eq!(norm("/a%25%34%31"), Err(PathError::DoubleEncoded));
    assert_eq!(norm("/a%25%61a"), Err(PathError::DoubleEncoded));
    assert_eq!(norm("/100%25off").as_deref(), Ok("/100%25off"));
    let keep_double = rules(EscapedSlashes::Reject, true, true);
    assert_eq!(
        normalize(b"/a%2541", &keep_double).as_deref(),
        Ok("/a%2541")
    );
}

#[test]
fn parameters_do_not_hide_a_segment() {
    assert_eq!(norm("/admin;x=1/x").as_deref(), Ok("/admin;x=1/x"));
    assert!(has_prefix("/admin;x=1/x", "/admin"));
    assert!(has_prefix("/admin;x=1", "/admin"));
    assert!(has_prefix("/admin%3Bx=1/y", "/admin"));
    assert!(has_prefix("/v1;a/orders;b/7", "/v1/orders"));
    assert!(!has_prefix("/adminx/y", "/admin"));
    assert!(!has_prefix("/x/admin", "/admin"));
    assert!(has_prefix("/anything", ""));
    assert_eq!(norm("/;x/admin"), Err(PathError::ParametersOnlySegment));
    assert_eq!(norm("/%3Bx/admin"), Err(PathError::ParametersOnlySegment));
    assert_eq!(strip_segments("/api;v=2/x/y", 1), "/x/y");
    assert_eq!(strip_segments("/api/v1", 2), "/");
    assert_eq!(strip_segments("/api/v1/", 2), "/");
}

/// A seeded xorshift generator of paths made of the pieces attackers combine.
struct Paths(u64);

impl Paths {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn path(&mut self) -> String {
        const PIECES: &[&str] = &[
            "/", "//", "admin", "pub", ".", "..", "%2e", "%2E", "%252e", "%2f", "%2F", "%5c", "\\",
            ";", ";x=1", "%3B", "%25", "%41", "%61", "a", "%20", "%00", "%0a", "%", "%4", "é", "~",
            "%7e", "x.y", "%2525", "|", "?",
        ];
        let n = 1 + self.next() % 8;
        let mut p = String::from("/");
        for _ in 0..n {
            p.push_str(PIECES[(self.next() % PIECES.len() as u64) as usize]);
        }
        p
    }
}

/// How a lenient upstream may read a forwarded path: decode every escape once, take
/// `\` for `/`, drop `;params`, merge slashes. Dot segments are not resolved: the
/// normalizer refuses every path an upstream could resolve them in.
fn upstream_reading(path: &str) -> String {
    let decoded = decode_once(path).replace('\\', "/");
    let segments: Vec<&str> = decoded
        .split('/')
        .map(|s| s.split(';').next().unwrap_or(""))
        .filter(|s| !s.is_empty())
        .collect();
    format!("/{}", segments.join("/"))
}

#[test]
fn generated_paths_keep_the_properties() {
    let mut gen = Paths(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let raw = gen.path();
        check_properties(&raw.as_bytes()[1..]);
        accepted += usize::from(norm(&raw).is_ok());
    }
    assert!(accepted > 2_000, "the generator mostly made refused paths");
}

/// The fuzz target's corpus (fuzz/corpus/normalize), replayed: inputs the fuzzer
/// found interesting stay checked on every test run.
#[test]
fn the_fuzz_corpus_keeps_the_properties() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/normalize");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/normalize") {
        let data = std::fs::read(entry.expect("entry").path()).expect("corpus file");
        check_properties(&data);
        replayed += 1;
    }
    assert!(replayed > 100, "only {replayed} corpus entries");
}

#[test]
fn whatever_an_upstream_reads_under_admin_routes_under_admin() {
    let mut gen = Paths(0x2545_F491_4F6C_DD1D);
    let decode = rules(EscapedSlashes::Decode, true, false);
    for _ in 0..20_000 {
        let raw = gen.path();
        for r in [DEFAULT, decode] {
            let Ok(out) = normalize(raw.as_bytes(), &r) else {
                continue;
            };
            if has_prefix(&upstream_reading(&out), "/admin") {
                assert!(has_prefix(&out, "/admin"), "{raw:?} -> {out:?} under {r:?}");
            }
        }
    }
}
