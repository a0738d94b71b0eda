//! What `bench` prints: the set-up, a line per round, the table and the targets.

use super::broker::Broker;
use super::round::Outcome;
use super::{Measured, Mode, Settings};

/// Targets for 64-byte QoS 0 messages on a 2-core machine: sealed rate / plaintext rate.
const TARGETS: [(Mode, f64); 2] = [(Mode::Signed, 0.5), (Mode::GroupMac, 0.9)];

/// The machine, the broker and the settings.
pub fn header(broker: &Broker, s: &Settings) {
    println!("machine: {}", machine());
    println!(
        "crypto:  ChaCha20-Poly1305 with the {} Poly1305 backend, Ed25519 (ed25519-dalek)",
        poly1305_backend()
    );
    println!("broker:  {}", broker.description);
    println!("clients: rumqttc 0.25, MQTT 3.1.1, TCP_NODELAY, in this process");
    if let Some(load) = load_average() {
        println!(
            "load:    {load} (1-minute load average before the run; other processes share the CPUs)"
        );
    }
    println!(
        "run:     {} x {} B messages per mode and round, QoS {}, {} round(s) with the modes \
         interleaved; {}, at most {} in flight; the subscriber opens {}",
        s.count,
        s.size,
        s.qos,
        s.rounds,
        s.rate.map_or("as fast as possible".to_string(), |r| {
            format!("paced at {r} msg/s")
        }),
        s.window,
        if s.batch > 1 {
            format!(
                "signed messages in batches of up to {} (Ed25519 batch verification), others \
                 one at a time",
                s.batch
            )
        } else {
            "one message at a time".to_string()
        }
    );
}

/// One line per finished round.
pub fn progress(mode: Mode, round: u32, o: &Outcome) {
    println!(
        "  round {} {:<10} {:>9.0} msg/s  ({} received in {:.3} s)",
        round + 1,
        mode.name(),
        rate(o),
        o.received,
        o.elapsed.as_secs_f64()
    );
}

/// The results table and the targets.
pub fn table(modes: &[Mode], all: &[Measured], s: &Settings, local_broker: bool) {
    println!();
    println!(
        "{:<10} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>7}",
        "mode",
        "msg/s",
        "x plain",
        "p50 ms",
        "p99 ms",
        "pub CPU",
        "sub CPU",
        "brk CPU",
        "received",
        "lost",
        "refused"
    );
    for &mode in modes {
        let rounds: Vec<&Measured> = all.iter().filter(|m| m.mode == mode).collect();
        let rates: Vec<f64> = rounds.iter().map(|m| rate(&m.outcome)).collect();
        let ratio = ratios(all, mode).map_or("-".to_string(), |r| format!("{r:.2}"));
        let mut latencies: Vec<u64> = rounds
            .iter()
            .flat_map(|m| m.outcome.latencies_ns.iter().copied())
            .collect();
        latencies.sort_unstable();
        let received: u64 = rounds.iter().map(|m| m.outcome.received).sum();
        let rejected: u64 = rounds.iter().map(|m| m.outcome.rejected).sum();
        let lost = (s.count * rounds.len() as u64).saturating_sub(received + rejected);
        let per_msg = |ns: u64| {
            if received == 0 {
                "-".to_string()
            } else {
                format!("{:.1} us", ns as f64 / 1e3 / received as f64)
            }
        };
        let pub_cpu = per_msg(rounds.iter().map(|m| m.outcome.pub_cpu_ns).sum());
        let sub_cpu = per_msg(rounds.iter().map(|m| m.outcome.sub_cpu_ns).sum());
        let broker_cpu = if rounds.iter().all(|m| m.broker_cpu_ns.is_some()) {
            per_msg(rounds.iter().filter_map(|m| m.broker_cpu_ns).sum())
        } else {
            "n/a".to_string()
        };
        println!(
            "{:<10} {:>9.0} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>7}",
            mode.name(),
            median(rates).unwrap_or(0.0),
            ratio,
            ms(percentile(&latencies, 50)),
            ms(percentile(&latencies, 99)),
            pub_cpu,
            sub_cpu,
            broker_cpu,
            received,
            lost,
            rejected
        );
        if let Some(e) = rounds.iter().find_map(|m| m.outcome.first_error.as_ref()) {
            println!("{:<10} first refusal: {e}", "");
        }
    }
    println!(
        "msg/s: median over rounds; x plain: median over rounds of (rate / plaintext rate of \
         the same round); latency: seal to open of every message; CPU per message (thread \
         CPU time / messages{})",
        if local_broker {
            ""
        } else {
            "; broker CPU is not measurable for a given broker"
        }
    );
    if let Some(load) = load_average() {
        println!("load average after the run: {load}");
    }
    if s.rate.is_some() {
        println!(
            "paced run: msg/s is the pace, not a capacity; the latencies are those at this load"
        );
    } else if s.size == 64 && s.qos == 0 && modes.contains(&Mode::Plaintext) {
        for (mode, target) in TARGETS {
            if let Some(r) = ratios(all, mode) {
                println!(
                    "target {:<9} >= {target:.2} x plaintext (64 B, QoS 0, 2-core machine): {} \
                     ({r:.2})",
                    mode.name(),
                    if r >= target { "met" } else { "NOT met" }
                );
            }
        }
    }
}

/// Median over rounds of the rate of `mode` divided by the plaintext rate of the same round.
fn ratios(all: &[Measured], mode: Mode) -> Option<f64> {
    let per_round: Vec<f64> = all
        .iter()
        .filter(|m| m.mode == mode)
        .filter_map(|m| {
            let plain = all
                .iter()
                .find(|p| p.mode == Mode::Plaintext && p.round == m.round)?;
            let base = rate(&plain.outcome);
            (base > 0.0).then(|| rate(&m.outcome) / base)
        })
        .collect();
    median(per_round)
}

fn rate(o: &Outcome) -> f64 {
    let secs = o.elapsed.as_secs_f64();
    if secs > 0.0 {
        o.received as f64 / secs
    } else {
        0.0
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return None;
    }
    let hi = v.get(n / 2).copied()?;
    if n % 2 == 1 {
        Some(hi)
    } else {
        Some((v.get(n / 2 - 1).copied()? + hi) / 2.0)
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).clamp(1, n);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

fn ms(ns: Option<u64>) -> String {
    ns.map_or("-".to_string(), |ns| format!("{:.2}", ns as f64 / 1e6))
}

/// "2 CPUs, Intel(R) Xeon(R) Processor" from /proc/cpuinfo.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{cpus} CPUs, {model}")
}

/// The 1-minute load average, from /proc/loadavg.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_string)
}

/// Which Poly1305 code this binary was built with (see BENCHMARKS.md).
fn poly1305_backend() -> &'static str {
    if cfg!(poly1305_backend = "soft") {
        "soft (portable)"
    } else if cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
        "autodetected (AVX2 when the CPU has it)"
    } else {
        "soft (portable)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
