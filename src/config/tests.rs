//! Config parsing and validation.

use super::*;

const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:0"
[[providers]]
name = "groq"
base_url = "https://api.groq.com/openai/v1"
api_key_env = "GROQ_API_KEY"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("switchyard.toml"))
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(MINIMAL).expect("valid");
    assert_eq!(c.routing.max_attempts, 3);
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.server.pricing_dir, PathBuf::from("pricing"));
}

#[test]
fn unknown_field_is_named() {
    let err = parse(&format!("{MINIMAL}\n[routing]\nmax_atempts = 2\n")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("switchyard.toml"), "{msg}");
    assert!(msg.contains("max_atempts"), "{msg}");
}

#[test]
fn human_durations_parse_and_zero_is_refused() {
    let c = parse(&format!(
        "{MINIMAL}\n[upstream]\nfirst_byte_timeout = \"250ms\"\n"
    ))
    .expect("valid");
    assert_eq!(c.upstream.first_byte_timeout, Duration::from_millis(250));
    let err = parse(&format!("{MINIMAL}\n[upstream]\nidle_timeout = \"0s\"\n")).unwrap_err();
    assert!(err.to_string().contains("upstream.idle_timeout"), "{err}");
}

#[test]
fn bad_values_name_their_field() {
    let cases = [
        ("[routing]\nmax_attempts = 0\n", "routing.max_attempts"),
        (
            "[[providers]]\nname = \"groq\"\nbase_url = \"http://x\"\n",
            "providers[1].name",
        ),
        (
            "[[providers]]\nname = \"b\"\nbase_url = \"ftp://x\"\n",
            "providers[1].base_url",
        ),
        (
            "[[providers]]\nname = \"B/x\"\nbase_url = \"http://x\"\n",
            "providers[1].name",
        ),
        ("[groups]\nauto = [\"groq/x\"]\n", "groups.auto"),
        ("[groups]\nempty = []\n", "groups.empty"),
    ];
    for (extra, field) in cases {
        let err = parse(&format!("{MINIMAL}\n{extra}")).unwrap_err();
        assert!(err.to_string().contains(field), "{extra}: {err}");
    }
}

#[test]
fn the_example_config_is_valid() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/switchyard.example.toml"
    ));
    let c = Config::load(path).expect("the example config parses and validates");
    assert_eq!(c.providers.len(), 3);
    assert_eq!(c.providers[2].protocol, crate::dialect::Protocol::Anthropic);
    assert!(c.server.pricing_dir.ends_with("pricing"));
    // With the committed price sheets it makes a catalog (keys are only looked up).
    let sheets =
        crate::pricing::load_dir(&c.server.pricing_dir).expect("committed sheets are valid");
    let catalog = crate::catalog::Catalog::build(&c, &sheets, &|_| Some("sk-placeholder".into()))
        .expect("the example config and the sheets agree");
    assert_eq!(catalog.resolve("chat-small").map(<[usize]>::len), Some(2));
}

#[test]
fn an_open_router_listens_on_loopback_only_unless_told() {
    let public = MINIMAL.replace("127.0.0.1:0", "0.0.0.0:8080");
    let err = parse(&public).expect_err("public without keys");
    assert!(err.to_string().contains("server.listen"), "{err}");
    let told = public.replace("[server]\n", "[server]\nallow_unauthenticated = true\n");
    parse(&told).expect("explicitly allowed");
    let keyed = format!(
        "{public}\n[[clients]]\nname = \"app\"\nkey_sha256 = \"{}\"\n",
        "ab".repeat(32)
    );
    parse(&keyed).expect("keys configured");
    let ipv6 = MINIMAL.replace("127.0.0.1:0", "[::1]:8080");
    parse(&ipv6).expect("IPv6 loopback");
}
