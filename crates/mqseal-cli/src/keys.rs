//! `keygen`, `trust`, `grant` and `rotate`: the keystore side (all file handling is
//! `mqseal-store`'s).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mqseal::Validity;
use mqseal_rumqttc::grants::{self, GrantEvent};
use mqseal_store::{Roles, Store, unix_now};

use crate::conn::{ConnFlags, runtime};
use crate::error::{CliError, Result, err};
use crate::when::{format_time, parse_duration, parse_time};
use crate::{HelpFlag, StoreFlag};

/// `mqseal keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Name of the new identity (shown to peers that trust it).
    #[arg(required_unless_present = "tree")]
    name: Option<String>,
    /// Instead: create a random root key for this topic tree (`#`, `prefix/#` or a topic).
    #[arg(long, value_name = "FILTER", conflicts_with = "name")]
    tree: Option<String>,
    /// With --tree: the key (and every grant of it) expires this long after its start, e.g.
    /// `30d`: sealers then refuse it (key_expired) unless a rotation reached them. Default:
    /// never expires.
    #[arg(long, value_name = "DURATION", requires = "tree")]
    valid_for: Option<String>,
    /// With --tree: the key is not used before this time (`YYYY-MM-DDTHH:MM:SSZ`, `+1d`, or
    /// seconds since 1970). Default: at once.
    #[arg(long, value_name = "TIME", requires = "tree")]
    not_before: Option<String>,
    #[command(flatten)]
    store: StoreFlag,
}

/// `mqseal rotate`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RotateArgs {
    /// The root filter to rotate (a key created here, e.g. `plant/#`).
    filter: String,
    /// Leave this member out: it gets no grant of the new epoch (revocation; repeatable).
    #[arg(long, value_name = "PEER")]
    exclude: Vec<String>,
    /// Grant the new epoch ahead of time: members keep sealing under the current epoch until
    /// this time, then switch by themselves, even offline (`YYYY-MM-DDTHH:MM:SSZ`, `+1d`, or
    /// seconds since 1970). Default: at once.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The new epoch expires this long after it starts (e.g. `30d`): a member the next rotation
    /// never reaches (a broker withholding it) stops sealing under it then. Default: never.
    #[arg(long, value_name = "DURATION")]
    valid_for: Option<String>,
    /// Write each member's grant to DIR/<member>.grant (default: the current directory).
    #[arg(
        short = 'o',
        long = "out",
        value_name = "DIR",
        conflicts_with = "publish"
    )]
    out: Option<PathBuf>,
    /// Publish the grants in-band instead (retained, on each member's grant topic).
    #[arg(long)]
    publish: bool,
    #[command(flatten)]
    conn: ConnFlags,
    #[command(flatten)]
    store: StoreFlag,
    #[command(flatten)]
    help: HelpFlag,
}

/// The validity `[start, start + valid_for]` of a key starting at `at` (now when absent).
fn validity(at: Option<&str>, valid_for: Option<&str>, now: u64) -> Result<Validity> {
    let not_before = at.map(|t| parse_time(t, now)).transpose()?.unwrap_or(0);
    let Some(valid_for) = valid_for else {
        return Ok(Validity::new(not_before, None)?);
    };
    let length = parse_duration(valid_for)?;
    if length == 0 {
        return Err(CliError(
            "--valid-for 0 would expire the key at once; fix: e.g. --valid-for 30d".into(),
        ));
    }
    // Counted from the start (or from now for a key that starts at once, which keeps
    // not_before 0: receivers with a slow clock still accept it).
    let end = not_before.max(now).saturating_add(length);
    Ok(Validity::new(not_before, Some(end))?)
}

/// How a validity reads in the command's output.
fn describe(v: Validity) -> String {
    match (v.not_before(), v.not_after()) {
        (0, None) => "valid at all times".into(),
        (0, Some(end)) => format!("valid until {}", format_time(end)),
        (start, None) => format!("valid from {}", format_time(start)),
        (start, Some(end)) => format!(
            "valid from {} until {}",
            format_time(start),
            format_time(end)
        ),
    }
}

/// `mqseal trust`.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The peer: a path to its identity.pub, or the line itself (`name mqseal-pub1:…`).
    peer: String,
    /// Accept grants (keys) issued by this peer. Only for administrators.
    #[arg(long)]
    issuer: bool,
    /// Accept messages from this peer (the default unless only --issuer is given).
    #[arg(long)]
    sender: bool,
    /// With --issuer: accept its grants only for this filter and below (repeatable, e.g.
    /// `--scope lab/#`). Without it the issuer is trusted for every filter (an administrator).
    #[arg(long, value_name = "FILTER", requires = "issuer")]
    scope: Vec<String>,
    /// Also accept this sender's group-mac (unsigned) messages on topics under this filter
    /// (repeatable). Any holder of the topic key can forge such messages: only for devices
    /// that cannot sign, on the subtree they publish to.
    #[arg(long = "group-mac", value_name = "FILTER")]
    group_mac: Vec<String>,
    #[command(flatten)]
    store: StoreFlag,
}

/// `mqseal grant`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct GrantArgs {
    /// The filter to grant (a held key's filter or one below it, e.g. `plant/7/#`).
    #[arg(required_unless_present_any = ["accept", "fetch"])]
    filter: Option<String>,
    /// The trusted peer receiving it.
    #[arg(long, required_unless_present_any = ["accept", "fetch"])]
    to: Option<String>,
    /// Write the grant to this file (default: <peer>.grant).
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// Publish the grant in-band instead (retained, on the recipient's grant topic).
    #[arg(long, conflicts_with = "out")]
    publish: bool,
    /// Accept a grant file addressed to this identity.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["filter", "fetch"])]
    accept: Option<PathBuf>,
    /// Accept the grants waiting for this identity on the broker (its grant topic).
    #[arg(long)]
    fetch: bool,
    #[command(flatten)]
    conn: ConnFlags,
    #[command(flatten)]
    store: StoreFlag,
    #[command(flatten)]
    help: HelpFlag,
}

pub fn keygen(a: &KeygenArgs) -> Result<()> {
    let dir = a.store.dir();
    if let Some(filter) = &a.tree {
        let store = Store::open(&dir)?;
        let now = unix_now();
        let validity = validity(a.not_before.as_deref(), a.valid_for.as_deref(), now)?;
        let key = store
            .create_key_with(filter, validity, now)
            .map_err(|e| filter_error(filter, e))?;
        println!(
            "created a random key for {} (epoch {}, {}) in {}",
            key.filter(),
            key.epoch(),
            describe(key.key.validity()),
            dir.display()
        );
        println!(
            "grant parts of it with: mqseal grant FILTER --to PEER --store {}",
            dir.display()
        );
        return Ok(());
    }
    let name = a.name.as_deref().unwrap_or_default();
    let store = Store::create(&dir, name)?;
    println!("created identity {name} in {}", dir.display());
    println!("fingerprint {}", store.fingerprint());
    println!(
        "secret key  {} (mode 0600: never share it)",
        store.path(mqseal_store::layout::IDENTITY_KEY).display()
    );
    println!(
        "public line {} (give it to peers: mqseal trust FILE)",
        store.path(mqseal_store::layout::IDENTITY_PUB).display()
    );
    println!("{}", store.public_line());
    Ok(())
}

/// The peer's `identity.pub` line: from the file at `peer`, or `peer` itself.
fn peer_line(peer: &str) -> Result<(String, String)> {
    const FIX: &str = "fix: pass the peer's identity.pub file (made by `mqseal keygen`), or its \
                       line `NAME mqseal-pub1:HEX`";
    let path = PathBuf::from(peer);
    if path.is_dir() {
        return Err(CliError(format!(
            "{}: is a directory; {FIX}",
            path.display()
        )));
    }
    if path.is_file() {
        let bytes = std::fs::read(&path)
            .map_err(|e| err(&format!("{}: cannot read", path.display()), e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            CliError(format!(
                "{}: not an identity.pub file (not text); {FIX}",
                path.display()
            ))
        })?;
        let line = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .ok_or_else(|| {
                CliError(format!(
                    "{}: no identity line in the file; {FIX}",
                    path.display()
                ))
            })?;
        return Ok((path.display().to_string(), line));
    }
    if !peer.contains(mqseal_store::formats::PUBLIC_PREFIX) {
        return Err(CliError(format!(
            "{}: no such file, and not an identity line; {FIX}",
            crate::pubsub::shorten(peer)
        )));
    }
    Ok(("the identity line".to_string(), peer.to_string()))
}

pub fn trust(a: &TrustArgs) -> Result<()> {
    let (source, line) = peer_line(&a.peer)?;
    let parsed = mqseal_store::formats::parse_peer_line(line.trim()).map_err(|reason| {
        CliError(format!(
            "{source}: not a valid identity line: {reason}; fix: pass the peer's identity.pub \
             unmodified"
        ))
    })?;
    let store = Store::open(a.store.dir())?;
    let roles = Roles {
        sender: a.sender || !a.issuer,
        issuer: a.issuer,
    };
    if !a.group_mac.is_empty() && !roles.sender {
        return Err(CliError(
            "--group-mac is for senders; fix: add --sender, or drop --group-mac".into(),
        ));
    }
    let mut wanted = mqseal_store::TrustedPeer::new(&parsed.name, parsed.public, roles);
    wanted.scope = a.scope.clone();
    wanted.group_mac = a.group_mac.clone();
    let peer = store.trust_peer(wanted)?;
    let mut what = match (roles.sender, roles.issuer) {
        (true, true) => "sender and issuer".to_string(),
        (false, true) => "issuer".to_string(),
        _ => "sender".to_string(),
    };
    if roles.issuer {
        if peer.scope.is_empty() {
            what.push_str(" (grants for every filter)");
        } else {
            what.push_str(&format!(" (grants under {})", peer.scope.join(", ")));
        }
    }
    if !peer.group_mac.is_empty() {
        what.push_str(&format!(
            ", group-mac messages under {}",
            peer.group_mac.join(", ")
        ));
    }
    println!(
        "trusted {} ({}) as {what}",
        peer.name,
        peer.public.fingerprint()
    );
    Ok(())
}

pub fn grant(a: &GrantArgs) -> Result<()> {
    let store = Store::open(a.store.dir())?;
    if let Some(file) = &a.accept {
        let bytes = std::fs::read(file).map_err(|e| {
            err(
                &format!("{}: cannot read the grant file", file.display()),
                e,
            )
        })?;
        let grant = mqseal::Grant::from_bytes(&bytes).map_err(|e| {
            CliError(format!(
                "{}: not a grant ({e}); fix: pass a file written by `mqseal grant -o`",
                file.display()
            ))
        })?;
        let accepted = store.accept_grant(&grant, unix_now())?;
        report_accepted(&accepted);
        return Ok(());
    }
    if a.fetch {
        return fetch(&store, &a.conn);
    }
    let (Some(filter), Some(to)) = (&a.filter, &a.to) else {
        return Err(CliError("grant needs FILTER and --to PEER".into()));
    };
    let outgoing = store
        .issue_grant(filter, to)
        .map_err(|e| filter_error(filter, e))?;
    if a.publish {
        publish_grant(&a.conn, &outgoing)?;
        println!(
            "published the grant of {} (epoch {}) to {to}, retained on {}",
            outgoing.filter, outgoing.epoch, outgoing.topic
        );
        return Ok(());
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{to}.grant")));
    std::fs::write(&out, &outgoing.payload)
        .map_err(|e| err(&format!("{}: cannot write the grant", out.display()), e))?;
    println!(
        "wrote the grant of {} (epoch {}) for {to} to {} ({} bytes; safe to send in the clear: \
         only {to} can unwrap it)",
        outgoing.filter,
        outgoing.epoch,
        out.display(),
        outgoing.payload.len()
    );
    println!(
        "{to} accepts it with: mqseal grant --accept {}",
        out.display()
    );
    Ok(())
}

pub fn rotate(a: &RotateArgs) -> Result<()> {
    let store = Store::open(a.store.dir())?;
    let now = unix_now();
    let validity = validity(a.at.as_deref(), a.valid_for.as_deref(), now)?;
    let members = store
        .members(&a.filter)
        .map_err(|e| filter_error(&a.filter, e))?;
    let mut exclude = Vec::new();
    for name in &a.exclude {
        let member = members
            .iter()
            .find(|m| m.recipient_name == *name)
            .ok_or_else(|| {
                let names: Vec<&str> = members.iter().map(|m| m.recipient_name.as_str()).collect();
                CliError(format!(
                    "--exclude {name}: not a member of {} (members: {}); fix: one of those names",
                    a.filter,
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })?;
        exclude.push(member.recipient.fingerprint());
    }
    let rotation = store
        .rotate_with(&a.filter, &exclude, validity, now)
        .map_err(|e| filter_error(&a.filter, e))?;
    println!(
        "rotated {} to epoch {} ({}); {} grant(s), {} member(s) left out",
        rotation.filter,
        rotation.epoch,
        describe(rotation.validity),
        rotation.grants.len(),
        rotation.excluded.len()
    );
    for (epoch, not_after) in &rotation.retired {
        println!(
            "epoch {epoch} is retired: receivers here accept it until {}",
            format_time(*not_after)
        );
    }
    if a.publish {
        publish_grants(&a.conn, &rotation.grants)?;
        for g in &rotation.grants {
            println!(
                "published the grant of {} to {}, retained on {}",
                g.filter, g.recipient_name, g.topic
            );
        }
        return Ok(());
    }
    let dir = a.out.clone().unwrap_or_else(|| PathBuf::from("."));
    for g in &rotation.grants {
        let out = dir.join(format!("{}.grant", g.recipient_name));
        std::fs::write(&out, &g.payload)
            .map_err(|e| err(&format!("{}: cannot write the grant", out.display()), e))?;
        println!(
            "wrote the grant of {} (epoch {}) for {} to {}",
            g.filter,
            g.epoch,
            g.recipient_name,
            out.display()
        );
    }
    Ok(())
}

/// Names the filter when the store refuses it as a filter.
fn filter_error(filter: &str, e: mqseal_store::StoreError) -> CliError {
    match e {
        mqseal_store::StoreError::Core(mqseal::Error::InvalidFilter) => CliError(format!(
            "invalid key filter {}: a key covers '#', 'prefix/#' or one exact topic ('+' is \
             not allowed, '#' only as the whole last level); fix: e.g. plant/# or plant/7/temp",
            crate::pubsub::shorten(filter)
        )),
        other => other.into(),
    }
}

fn report_accepted(a: &mqseal_store::AcceptedGrant) {
    let from = a.issuer_name.as_deref().unwrap_or("myself");
    if a.update.added {
        println!(
            "accepted the key of {} (epoch {}) from {from}",
            a.update.filter, a.update.epoch
        );
    } else {
        println!(
            "already held: {} (epoch {}) from {from}",
            a.update.filter, a.update.epoch
        );
    }
}

/// Publishes a grant retained at QoS 1 with a plain client (grants are not sealed: they are
/// HPKE-wrapped and signed already), with the wrapper's grant helper.
fn publish_grant(conn: &ConnFlags, g: &mqseal_store::OutgoingGrant) -> Result<()> {
    publish_grants(conn, std::slice::from_ref(g))
}

/// Publishes grants retained at QoS 1 and waits until the broker acknowledged each.
fn publish_grants(conn: &ConnFlags, all: &[mqseal_store::OutgoingGrant]) -> Result<()> {
    if all.is_empty() {
        return Ok(());
    }
    let options = conn.options("grant")?;
    let address = conn.address();
    runtime()?.block_on(async {
        let (client, mut lp) = rumqttc::AsyncClient::new(options, all.len().max(10));
        grants::publish_grants(&client, all)
            .await
            .map_err(|e| err("cannot queue the grants", e))?;
        let mut acked = 0;
        while acked < all.len() {
            if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) =
                poll(&mut lp, &address).await?
            {
                acked += 1;
            }
        }
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), lp.poll()).await;
        Ok(())
    })
}

/// Accepts every grant retained on this identity's grant topic.
fn fetch(store: &Store, conn: &ConnFlags) -> Result<()> {
    let options = conn.options("grant")?;
    let address = conn.address();
    let filter = grants::grant_subscription(store);
    let accepted = runtime()?.block_on(async {
        let (client, mut lp) = rumqttc::AsyncClient::new(options, 10);
        client
            .subscribe(&filter, rumqttc::QoS::AtLeastOnce)
            .await
            .map_err(|e| err("cannot subscribe", e))?;
        let mut subscribed = false;
        let mut accepted = 0usize;
        loop {
            // Retained grants arrive right after the SUBACK; stop once the broker goes quiet.
            let event = if subscribed {
                match tokio::time::timeout(Duration::from_secs(2), lp.poll()).await {
                    Err(_) => break,
                    Ok(e) => e.map_err(|e| explain(&e, &address))?,
                }
            } else {
                poll(&mut lp, &address).await?
            };
            match event {
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => subscribed = true,
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                    match grants::handle_grant_message(store, &p.topic, &p.payload, p.retain) {
                        GrantEvent::Accepted { grant, .. } => {
                            report_accepted(&grant);
                            accepted += 1;
                        }
                        GrantEvent::Refused(r) => eprintln!("mqseal: {r}"),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let _ = client.disconnect().await;
        Ok::<_, CliError>(accepted)
    })?;
    println!("{accepted} grant(s) accepted from {filter}");
    Ok(())
}

async fn poll(lp: &mut rumqttc::EventLoop, address: &str) -> Result<rumqttc::Event> {
    match tokio::time::timeout(Duration::from_secs(30), lp.poll()).await {
        Err(_) => Err(CliError(format!(
            "{address}: no answer within 30 s; fix: check the host, port and firewall"
        ))),
        Ok(r) => r.map_err(|e| explain(&e, address)),
    }
}

fn explain(e: &rumqttc::ConnectionError, address: &str) -> CliError {
    let f = mqseal_rumqttc::explain(e);
    CliError(format!(
        "cannot connect to {address}: {}; fix: {}",
        f.reason, f.fix
    ))
}
