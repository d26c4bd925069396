//! A seeded, reproducible schedule of faults: the same seed, shape and kinds give the same faults
//! on the same nodes at the same offsets.

use std::{fmt, str::FromStr, time::Duration};

use serde::Serialize;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL the node's application; it is restarted (with its CometBFT) when healed.
    KillApp,
    /// SIGKILL the node's CometBFT; restarted when healed.
    KillCometbft,
    /// SIGKILL both processes; restarted when healed.
    KillNode,
    /// SIGSTOP both processes; SIGCONT when healed.
    Pause,
    /// One L1 validator cut from every other node (needs network namespaces).
    IsolateL1,
    /// L1 split into two halves, neither with a quorum: L1 stalls (needs namespaces).
    SplitL1,
    /// Every L2 node cut from every L1 node: commits cannot reach L1 (needs namespaces).
    CutL2FromL1,
    /// One L2 node cut from every other node (needs namespaces).
    IsolateL2,
    /// 10 % loss and a 1 Mbit/s bottleneck on what reaches one node (needs namespaces).
    Degrade,
    /// One L1 validator's application applies a write its blocks do not hold, so its app hash
    /// leaves the quorum's (needs a `byzantine-test` build); healed by wiping its state so it
    /// syncs again from the honest validators.
    ByzantineL1,
    /// One node's disk (a tmpfs of its own) filled to the last byte; freed when healed.
    FullDisk,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        FaultKind::KillApp,
        FaultKind::KillCometbft,
        FaultKind::KillNode,
        FaultKind::Pause,
        FaultKind::IsolateL1,
        FaultKind::SplitL1,
        FaultKind::CutL2FromL1,
        FaultKind::IsolateL2,
        FaultKind::Degrade,
        FaultKind::ByzantineL1,
        FaultKind::FullDisk,
    ];

    /// Faults of the network, which need every node in its own namespace.
    pub fn needs_netns(self) -> bool {
        matches!(
            self,
            FaultKind::IsolateL1
                | FaultKind::SplitL1
                | FaultKind::CutL2FromL1
                | FaultKind::IsolateL2
                | FaultKind::Degrade
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::KillApp => "kill-app",
            FaultKind::KillCometbft => "kill-cometbft",
            FaultKind::KillNode => "kill-node",
            FaultKind::Pause => "pause",
            FaultKind::IsolateL1 => "isolate-l1",
            FaultKind::SplitL1 => "split-l1",
            FaultKind::CutL2FromL1 => "cut-l2-from-l1",
            FaultKind::IsolateL2 => "isolate-l2",
            FaultKind::Degrade => "degrade",
            FaultKind::ByzantineL1 => "byzantine-l1",
            FaultKind::FullDisk => "full-disk",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown fault '{text}' (one of: {})", names.join(", "))
        })
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduledFault {
    pub kind: FaultKind,
    /// The node it strikes (the first of a group for splits and cuts).
    pub target: String,
    /// From the start of the fault phase.
    #[serde(serialize_with = "millis")]
    pub at: Duration,
    #[serde(serialize_with = "millis")]
    pub lasts: Duration,
}

fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

/// splitmix64: small, seedable and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// Uniform in `low..=high` milliseconds.
    pub fn millis_between(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high.saturating_sub(low) + 1))
    }
}

/// The nodes a schedule may strike.
#[derive(Debug, Clone)]
pub struct Targets {
    pub l1: Vec<String>,
    pub l2: Vec<String>,
}

/// Faults one after the other (never two at once: with 3f+1 validators one fault at a time is
/// what the guarantee covers), each kind in turn in a seeded order so every kind occurs, on
/// seeded targets, with seeded gaps and lengths, until `phase` is used.
pub fn generate(seed: u64, phase: Duration, kinds: &[FaultKind], targets: &Targets) -> Vec<ScheduledFault> {
    let mut rng = Rng::new(seed);
    let mut schedule = Vec::new();
    if kinds.is_empty() {
        return schedule;
    }
    let mut order: Vec<FaultKind> = kinds.to_vec();
    let mut at = rng.millis_between(2_000, 4_000);
    loop {
        // A fresh seeded permutation per round: every kind once per round.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &kind in &order {
            let lasts = rng.millis_between(3_000, 8_000);
            if at + lasts > phase {
                return schedule;
            }
            let pool = match kind {
                FaultKind::IsolateL1 | FaultKind::SplitL1 | FaultKind::ByzantineL1 => &targets.l1,
                FaultKind::IsolateL2 | FaultKind::CutL2FromL1 => &targets.l2,
                _ if rng.below(2) == 0 => &targets.l1,
                _ => &targets.l2,
            };
            let target = pool[rng.below(pool.len() as u64) as usize].clone();
            schedule.push(ScheduledFault { kind, target, at, lasts });
            at += lasts + rng.millis_between(3_000, 6_000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets { l1: (0..4).map(|i| format!("l1-{i}")).collect(), l2: (0..4).map(|i| format!("l2-{i}")).collect() }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let phase = Duration::from_secs(300);
        let a = generate(7, phase, &FaultKind::ALL, &targets());
        assert_eq!(a, generate(7, phase, &FaultKind::ALL, &targets()));
        assert_ne!(a, generate(8, phase, &FaultKind::ALL, &targets()));
    }

    #[test]
    fn faults_never_overlap_fit_the_phase_and_cover_every_kind() {
        let phase = Duration::from_secs(200);
        let schedule = generate(42, phase, &FaultKind::ALL, &targets());
        for pair in schedule.windows(2) {
            assert!(pair[0].at + pair[0].lasts < pair[1].at, "{pair:?}");
        }
        assert!(schedule.iter().all(|f| f.at + f.lasts <= phase));
        for kind in FaultKind::ALL {
            assert!(schedule.iter().any(|f| f.kind == kind), "{kind} missing");
        }
        let l1_only = schedule
            .iter()
            .filter(|f| matches!(f.kind, FaultKind::IsolateL1 | FaultKind::SplitL1 | FaultKind::ByzantineL1));
        assert!(l1_only.clone().all(|f| f.target.starts_with("l1-")));
    }

    #[test]
    fn kinds_parse_from_their_names() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.as_str().parse::<FaultKind>(), Ok(kind));
        }
        assert!("meteor".parse::<FaultKind>().unwrap_err().contains("kill-app"));
    }
}
