//! The partner's write-only order API of seed 000, served on its own: a 409 for a user
//! who already applied this month, idempotent replays for a repeated
//! `Idempotency-Key`, and a fault mode for tests.
//!
//! ```text
//! cargo run --example thirdparty_api -- --port 8080
//! cargo run --example thirdparty_api -- --port 8080 --db mysql://batch:batch@127.0.0.1:3306/batch
//! cargo run --example thirdparty_api -- --port 8080 --fail-request 96 --fault drop
//! cargo run --example thirdparty_api -- --port 8080 --latency-ms 5   # a slow partner
//! cargo run --example thirdparty_api -- --port 8080 --ignore-idempotency-keys
//! curl -s -XPOST localhost:8080/orders -H 'content-type: application/json' \
//!      -d '{"username":"kim","totalPrice":1000,"appliedYearMonth":"2024-01"}'
//! curl -s localhost:8080/stats
//! ```

mod partner;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{Arg, Command, value_parser};
use partner::{Fault, FaultKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let matches = Command::new("thirdparty_api")
        .about("A partner's write-only order API (POST /orders, GET /orders, GET /stats)")
        .arg(Arg::new("port").long("port").default_value("8080").value_parser(value_parser!(u16)))
        .arg(
            Arg::new("db")
                .long("db")
                .default_value("sqlite:thirdparty.db")
                .help("the partner's own database: sqlite:FILE or mysql://…"),
        )
        .arg(
            Arg::new("fail-request")
                .long("fail-request")
                .value_parser(value_parser!(u64))
                .help("the number of the POST /orders request to fail (1 = the first)"),
        )
        .arg(
            Arg::new("fault")
                .long("fault")
                .default_value("503")
                .value_parser(["503", "drop"])
                .help("503: answer Service Unavailable; drop: store the order, then drop the connection"),
        )
        .arg(
            Arg::new("latency-ms")
                .long("latency-ms")
                .default_value("0")
                .value_parser(value_parser!(u64))
                .help("delay each answer to POST /orders by this many milliseconds (a slow partner)"),
        )
        .arg(
            Arg::new("ignore-idempotency-keys")
                .long("ignore-idempotency-keys")
                .action(clap::ArgAction::SetTrue)
                .help("treat every request as new, as a partner without Idempotency-Key support"),
        )
        .get_matches();
    let port = *matches.get_one::<u16>("port").expect("defaulted");
    let db = matches.get_one::<String>("db").expect("defaulted");
    let fault = matches
        .get_one::<u64>("fail-request")
        .map(|&request| Fault {
            request,
            kind: match matches.get_one::<String>("fault").map(String::as_str) {
                Some("drop") => FaultKind::Drop,
                _ => FaultKind::Unavailable,
            },
        });
    let latency = Duration::from_millis(*matches.get_one::<u64>("latency-ms").expect("defaulted"));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let behaviour = partner::Behaviour {
        fault,
        latency,
        ignore_idempotency_keys: matches.get_flag("ignore-idempotency-keys"),
    };
    let partner = match partner::start(addr, db, behaviour).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start the partner API on {addr} with {db}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    println!(
        "partner API listening on {} (orders in {db}, answers delayed {} ms)",
        partner.url(),
        latency.as_millis()
    );
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
