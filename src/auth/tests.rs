//! Client keys, limits and the admin token.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::clock::{self, ManualClock};

fn config(name: &str, key: &str) -> ClientConfig {
    ClientConfig {
        name: name.into(),
        key_sha256: Some(to_hex(&digest(key.as_bytes()))),
        key_env: None,
        requests_per_minute: None,
        burst: None,
        spend_limit_usd: None,
        spend_window: Duration::from_secs(86_400),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn keys_are_found_by_their_digest_only() {
    let configs = [config("a", "sy-alpha"), config("b", "sy-beta")];
    validate_clients(&configs).expect("valid");
    let clients = Clients::build(&configs, &no_env, clock::system()).expect("builds");
    assert!(clients.required());
    assert_eq!(
        clients.find(b"sy-alpha").map(|c| c.name.clone()),
        Some("a".into())
    );
    assert_eq!(
        clients.find(b"sy-beta").map(|c| c.name.clone()),
        Some("b".into())
    );
    assert!(clients.find(b"sy-alph").is_none());
    assert!(clients.find(b"").is_none());
    // The digest itself is not a key.
    let hex = configs[0].key_sha256.clone().expect("set");
    assert!(clients.find(hex.as_bytes()).is_none());
}

#[test]
fn a_key_can_come_from_the_environment() {
    let mut c = config("env", "unused");
    c.key_sha256 = None;
    c.key_env = Some("CLIENT_KEY".into());
    let env = |v: &str| (v == "CLIENT_KEY").then(|| "sy-from-env".to_owned());
    let clients = Clients::build(&[c.clone()], &env, clock::system()).expect("builds");
    assert!(clients.find(b"sy-from-env").is_some());
    let err = Clients::build(&[c], &no_env, clock::system()).expect_err("variable unset");
    assert!(
        matches!(&err, ClientError::MissingKey { var, .. } if var == "CLIENT_KEY"),
        "{err}"
    );
}

#[test]
fn bad_client_entries_name_their_field() {
    let mut plain = config("a", "k");
    plain.key_sha256 = Some("sy-this-is-a-plain-key".into());
    let mut both = config("b", "k");
    both.key_env = Some("X".into());
    let mut neither = config("c", "k");
    neither.key_sha256 = None;
    let mut burst_alone = config("d", "k");
    burst_alone.burst = Some(3);
    let mut zero_spend = config("e", "k");
    zero_spend.spend_limit_usd = Some(Decimal::ZERO);
    let cases = [
        (vec![plain], "clients[0].key_sha256"),
        (vec![both], "clients[0].key_sha256"),
        (vec![neither], "clients[0].key_sha256"),
        (vec![burst_alone], "clients[0].burst"),
        (vec![zero_spend], "clients[0].spend_limit_usd"),
        (
            vec![config("x", "k1"), config("x", "k2")],
            "clients[1].name",
        ),
        (
            vec![config("x", "k1"), config("y", "k1")],
            "clients[1].key_sha256",
        ),
        (vec![config("Bad Name", "k1")], "clients[0].name"),
    ];
    for (configs, field) in cases {
        let ClientConfigError { field: f, message } = validate_clients(&configs).expect_err(field);
        assert_eq!(f, field, "{message}");
    }
}

#[test]
fn the_rate_limit_refuses_beyond_the_burst_and_says_when_to_retry() {
    let mut c = config("limited", "k");
    c.requests_per_minute = Some(60);
    c.burst = Some(2);
    let clients = Clients::build(&[c], &no_env, clock::system()).expect("builds");
    let client = clients.find(b"k").expect("found");
    assert!(client.admit().is_ok());
    assert!(client.admit().is_ok());
    let err = client.admit().expect_err("third request in a burst of two");
    assert!(
        matches!(err, LimitError::Rate { per_minute: 60, .. }),
        "{err:?}"
    );
    // One request per second replenishes: the wait is at most a second.
    assert!(err.retry_after() <= Duration::from_secs(1), "{err:?}");
    assert_eq!(client.report().refused_by_limits, 1);
    assert_eq!(client.report().requests, 3);
}

#[test]
fn the_spend_limit_refuses_once_reached_until_the_window_turns() {
    let mut c = config("budget", "k");
    c.spend_limit_usd = Some(Decimal::new(1, 2)); // $0.01
    c.spend_window = Duration::from_secs(3600);
    // Ten minutes before an hour turns: the window and the wait are exact.
    let hour_ms = 3_600_000;
    let clock = ManualClock::at(1_800_000 * hour_ms + hour_ms - 600_000);
    let clients = Clients::build(&[c], &no_env, Arc::new(clock.clone())).expect("builds");
    let client = clients.find(b"k").expect("found");
    assert!(client.admit().is_ok());
    client.charge(Decimal::new(6, 3));
    assert!(client.admit().is_ok(), "$0.006 of $0.01 spent");
    client.charge(Decimal::new(6, 3));
    let err = client.admit().expect_err("$0.012 of $0.01 spent");
    assert!(matches!(err, LimitError::Spend { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Duration::from_secs(600));
    // Still refused a second before the hour turns, admitted (and at zero) once it has.
    clock.advance_ms(599_000);
    assert!(client.admit().is_err());
    clock.advance_ms(1_000);
    assert!(client.admit().is_ok(), "a new window");
    assert_eq!(client.report().spent_usd, Decimal::ZERO);
    clock.set(1_800_000 * hour_ms + hour_ms - 1);
    // What is saved comes back.
    let saved = clients.spend_states();
    let fresh = Clients::build(
        &[ClientConfig {
            spend_limit_usd: Some(Decimal::new(1, 2)),
            spend_window: Duration::from_secs(3600),
            ..config("budget", "k")
        }],
        &no_env,
        Arc::new(clock.clone()),
    )
    .expect("builds");
    fresh.restore(&saved);
    assert_eq!(fresh.all()[0].report().spent_usd, Decimal::new(12, 3));
}

#[test]
fn bearer_and_admin_token() {
    let v = HeaderValue::from_static("Bearer  sy-key ");
    assert_eq!(bearer(Some(&v)), Some(&b"sy-key"[..]));
    assert_eq!(bearer(Some(&HeaderValue::from_static("Basic abc"))), None);
    assert_eq!(bearer(Some(&HeaderValue::from_static("Bearer "))), None);
    assert_eq!(bearer(None), None);
    let token = AdminToken::new("admin-secret");
    assert!(token.matches(b"admin-secret"));
    assert!(!token.matches(b"admin-secre"));
    assert!(!token.matches(b"admin-secret2"));
    assert!(!format!("{token:?}").contains("admin-secret"));
}

#[test]
fn generated_keys_match_their_digest() {
    let (key, hex) = generate_key();
    assert!(key.starts_with("sy-") && key.len() == 51, "{key}");
    assert_eq!(parse_digest(&hex), Some(digest(key.as_bytes())));
}

proptest! {
    #[test]
    fn digests_round_trip_through_hex(bytes in proptest::array::uniform32(any::<u8>())) {
        prop_assert_eq!(parse_digest(&to_hex(&bytes)), Some(bytes));
    }

    #[test]
    fn parse_digest_never_panics(s in ".{0,80}") {
        let _ = parse_digest(&s);
    }

    #[test]
    fn only_configured_keys_are_found(
        keys in proptest::collection::hash_set("[a-z0-9]{1,20}", 1..6),
        probe in "[a-z0-9]{1,20}",
    ) {
        let keys: Vec<String> = keys.into_iter().collect();
        let configs: Vec<ClientConfig> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| config(&format!("c{i}"), k))
            .collect();
        let clients = Clients::build(&configs, &no_env, clock::system()).expect("builds");
        for (i, k) in keys.iter().enumerate() {
            let found = clients.find(k.as_bytes()).map(|c| c.name.clone());
            prop_assert_eq!(found, Some(format!("c{i}")));
        }
        prop_assert_eq!(clients.find(probe.as_bytes()).is_some(), keys.contains(&probe));
    }
}
