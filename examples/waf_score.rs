//! Scores a WAF corpus with tollgate's rules, without a server: each record's path,
//! query, headers, cookies and body are read as the `waf` stage reads them, at
//! paranoia 1 to 4, against `anomaly_threshold` 5. A quick look while working on
//! rules; `load-tests/waf-compare.sh` measures the real binary beside ModSecurity.
//!
//!   cargo run --release --example waf_score -- CORPUS.jsonl [-v]
//!
//! A record: `{"class", "attack", "method", "path", "headers", "body", "content_type"}`
//! (the format of the shared corpus). `-v` lists each miss and false positive.

use tollgate::waf::request::{body_fields, head_fields, Inspection, Settings};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: waf_score CORPUS.jsonl [-v]");
    let verbose = args.iter().any(|a| a == "-v");
    let text = std::fs::read_to_string(path).expect("corpus");
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    for paranoia in 1..=4 {
        let settings = Settings::everywhere(paranoia);
        let (mut attacks, mut detected, mut ordinary, mut false_positives) = (0, 0, 0, 0);
        for record in &records {
            let (score, rules) = score(&settings, record);
            let attack = record["attack"].as_bool().unwrap_or(false);
            let blocked = score >= 5;
            if attack {
                attacks += 1;
                detected += usize::from(blocked);
            } else {
                ordinary += 1;
                false_positives += usize::from(blocked);
            }
            if verbose && paranoia == 1 && blocked != attack {
                let what = if attack { "MISS" } else { "FP  " };
                println!("{what} {} {} {rules}", record["id"], record["path"]);
            }
        }
        println!(
            "paranoia {paranoia}: detection {:.1}% ({detected}/{attacks}), false positives {:.1}% ({false_positives}/{ordinary})",
            100.0 * detected as f64 / attacks.max(1) as f64,
            100.0 * false_positives as f64 / ordinary.max(1) as f64,
        );
    }
}

/// The record's score and the rules that matched, with their targets.
fn score(settings: &Settings, record: &serde_json::Value) -> (u32, String) {
    let target = record["path"].as_str().unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let headers: Vec<(String, Vec<u8>)> = record["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        v.as_str().unwrap_or("").as_bytes().to_vec(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut inspection = Inspection::default();
    let fields = head_fields(
        path,
        query.map(str::as_bytes),
        headers.iter().map(|(k, v)| (k.as_str(), &v[..])),
    );
    inspection.read(settings, None, &fields);
    if let Some(body) = record["body"].as_str() {
        let content_type = record["content_type"].as_str().map(str::as_bytes);
        let header_type = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| &v[..]);
        inspection.read(
            settings,
            None,
            &body_fields(header_type.or(content_type), body.as_bytes()),
        );
    }
    let rules: Vec<String> = inspection
        .matches
        .iter()
        .map(|m| format!("{}@{}[{}]", m.rule.id, m.target, m.excerpt))
        .collect();
    (inspection.score(), rules.join(" "))
}
