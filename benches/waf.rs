//! The WAF's cost per request, without a server: a clean API request's head (path,
//! three query parameters, the headers a browser sends, two cookies), a clean 1 KB JSON
//! body, the same body as a form, and an attack in a query parameter, each read at
//! paranoia 1 as the `waf` stage reads them (fields, decoding, prefilters, rules,
//! libinjection); and, for reference, the JSON body parsed by serde_json and ignored
//! (what reading a JSON body costs at the least).
//!
//! `cargo bench --bench waf`

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use tollgate::waf::request::{body_fields, head_fields, Inspection, Settings};

const HEADERS: &[(&str, &[u8])] = &[
    ("host", b"api.example.com"),
    (
        "user-agent",
        b"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    ),
    ("accept", b"application/json, text/plain, */*"),
    ("accept-language", b"en-GB,en;q=0.8"),
    ("accept-encoding", b"gzip, deflate, br"),
    (
        "authorization",
        b"Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
    ),
    ("referer", b"https://app.example.com/orders?page=2"),
    (
        "cookie",
        b"session=0b9f6c1e4d7a4c559a0e3f1d2b6c7a88; theme=dark",
    ),
];

/// A clean JSON body of about 1 KB: an order with a note in prose.
fn json_body() -> String {
    let items: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"sku": "SKU-{i:04}", "qty": {i}, "note": "Leave it with the neighbour at no. {i}, it's fine"}}"#))
        .collect();
    format!(
        r#"{{"customer": "O'Brien & Sons", "email": "orders@obrien.example", "items": [{}], "comment": "Please select the union option and drop by on Monday; 1 or 2 boxes"}}"#,
        items.join(", ")
    )
}

fn inspect_head(settings: &Settings, query: &[u8]) -> u32 {
    let fields = head_fields("/api/v1/orders/12345", Some(query), HEADERS.iter().copied());
    let mut inspection = Inspection::default();
    inspection.read(settings, None, &fields);
    inspection.score()
}

fn inspect_body(settings: &Settings, content_type: &[u8], body: &[u8]) -> u32 {
    let fields = body_fields(Some(content_type), body);
    let mut inspection = Inspection::default();
    inspection.read(settings, None, &fields);
    inspection.score()
}

#[inline(never)]
fn parse_and_ignore(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

fn waf(c: &mut Criterion) {
    let settings = Settings::everywhere(1);
    let clean_query = b"page=2&sort=-created_at&q=O%27Brien%27s+caf%C3%A9";
    assert_eq!(inspect_head(&settings, clean_query), 0);
    c.bench_function("waf: clean request head", |b| {
        b.iter(|| inspect_head(&settings, black_box(clean_query)))
    });
    let json = json_body();
    assert!((900..1300).contains(&json.len()), "{} bytes", json.len());
    assert_eq!(
        inspect_body(&settings, b"application/json", json.as_bytes()),
        0
    );
    c.bench_function("waf: clean 1 KB JSON body", |b| {
        b.iter(|| inspect_body(&settings, b"application/json", black_box(json.as_bytes())))
    });
    // The floor of reading a JSON body at all: parsed, every value skipped.
    c.bench_function("reference: the 1 KB JSON body parsed and ignored", |b| {
        b.iter(|| parse_and_ignore(black_box(json.as_bytes())))
    });
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("comment", &json)
        .finish();
    c.bench_function("waf: clean 1 KB form body", |b| {
        b.iter(|| {
            inspect_body(
                &settings,
                b"application/x-www-form-urlencoded",
                black_box(form.as_bytes()),
            )
        })
    });
    let attack = b"page=2&q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    assert!(inspect_head(&settings, attack) >= 5);
    c.bench_function("waf: head with an SQL injection", |b| {
        b.iter(|| inspect_head(&settings, black_box(attack)))
    });
}

criterion_group!(benches, waf);
criterion_main!(benches);
