//! Shared parts of voxgate's benchmarks: the RTP load generator behind `voxgate-load`
//! (and its tokio-uring twin), CPU accounting from `/proc/stat`, and the JSON report.
//!
//! The generator owns one UDP socket on loopback and, from a thread pinned to its own
//! CPU, sends each session 50 G.711 µ-law RTP packets per second (sessions evenly
//! staggered over the 20 ms period), receives the echoes, and matches every echo to the
//! packet it came from by a counter carried in the first three payload bytes (µ-law
//! code words 0x80..=0xFE, which survive decode → re-encode unchanged). An echo's
//! arrival is the kernel's receive timestamp of the datagram (`SO_TIMESTAMPNS`; on
//! loopback, taken while the engine's send is delivered), not the time the generator
//! got round to reading it: the generator's own scheduling is not the engine's latency.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use voxgate_engine::srtp::SrtpContext;

/// One packet time.
pub const PTIME: Duration = Duration::from_millis(20);
/// Bins of [`LoadOutcome::phase_spread`] (1 ms each at 20 ms).
pub const PHASE_BINS: usize = 20;
const SAMPLES: usize = 160;
const RTP_HEADER: usize = 12;
/// Send times kept per session (5.12 s at 50 packets/s).
const RING: usize = 256;
const BATCH: usize = 64;
/// `recvmmsg` batches the generator reads between two rounds of sends, at most.
const RECV_ROUNDS_PER_TURN: usize = 8;
/// Send buffer: RTP header + 160 bytes + room for an SRTP tag (and MKI).
const SEND_BUF: usize = 256;

/// 20 ms of a 440 Hz tone at -12 dBFS, µ-law encoded, phase continuing with `frame`.
fn tone_frame(frame: u64, out: &mut [u8]) {
    for (n, b) in out.iter_mut().enumerate() {
        let t = (frame as f64 * SAMPLES as f64 + n as f64) / 8000.0;
        let v = (std::f64::consts::TAU * 440.0 * t).sin() * 8000.0;
        *b = voxgate_engine::codec::g711::ulaw_encode(v as i16);
    }
}

/// Writes packet counter `k` as three µ-law code words 0x80..=0xFE (base 127).
fn put_counter(k: u32, out: &mut [u8]) {
    let d = [(k / (127 * 127)) % 127, (k / 127) % 127, k % 127];
    for (o, d) in out.iter_mut().zip(d) {
        *o = 0x80 | d as u8;
    }
}

fn get_counter(b: &[u8]) -> Option<u32> {
    let mut k = 0u32;
    for &x in b.get(..3)? {
        if x & 0x80 == 0 || x == 0xff {
            return None;
        }
        k = k * 127 + u32::from(x & 0x7f);
    }
    Some(k)
}

/// Offset of the payload in an RTP packet, or None if it is not one.
fn rtp_payload(p: &[u8]) -> Option<&[u8]> {
    let first = *p.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let mut off = RTP_HEADER + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = u16::from_be_bytes([*p.get(off + 2)?, *p.get(off + 3)?]);
        off += 4 + 4 * usize::from(words);
    }
    p.get(off..)
}

/// The idle time of one CPU from `/proc/stat`, and when it was read.
///
/// Busy is measured as wall time minus idle time (idle + iowait: an io_uring wait counts
/// as iowait). Under NO_HZ the kernel reports idle and iowait from its precise sleep
/// accounting, but user/system/softirq from timer-tick samples, which miss work that
/// runs between ticks: here the sampled fields summed to 519 of 600 ticks of wall time
/// while the media thread ran, and busy as their share read 52 % against the thread's
/// own 57 %, some runs reading under half of it. Wall minus idle does not depend on
/// the samples.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    idle: u64,
    /// Time the hypervisor ran something else while this CPU wanted to run (field 8;
    /// 0 where the line is shorter).
    steal: u64,
    at: Instant,
}

impl CpuSample {
    /// Reads the line `cpuN` of `/proc/stat`.
    pub fn read(cpu: usize) -> io::Result<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let at = Instant::now();
        let name = format!("cpu{cpu}");
        let line = stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .ok_or_else(|| io::Error::other(format!("{name} not in /proc/stat")))?;
        Self::from_line(line, at)
    }

    /// Parses a `cpuN user nice system idle iowait …` line read at `at`.
    pub fn from_line(line: &str, at: Instant) -> io::Result<CpuSample> {
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| io::Error::other(format!("/proc/stat line {line:?}: {e}")))?;
        match (v.get(3), v.get(4)) {
            (Some(idle), Some(iowait)) => Ok(CpuSample {
                idle: idle + iowait,
                steal: v.get(7).copied().unwrap_or(0),
                at,
            }),
            _ => Err(io::Error::other(format!(
                "/proc/stat line {line:?}: no idle and iowait fields"
            ))),
        }
    }

    /// Busy percentage between `self` (earlier) and `later`, with `ticks_per_second`
    /// clock ticks (USER_HZ) per second; 0–100.
    pub fn busy_pct_at(&self, later: &CpuSample, ticks_per_second: f64) -> f64 {
        match self.wall_share_pct(
            later,
            later.idle.saturating_sub(self.idle),
            ticks_per_second,
        ) {
            Some(idle) => (100.0 - idle).clamp(0.0, 100.0),
            None => 0.0,
        }
    }

    /// `ticks` as a percentage of the wall time from `self` to `later` (None if none
    /// passed); 0–100.
    fn wall_share_pct(&self, later: &CpuSample, ticks: u64, ticks_per_second: f64) -> Option<f64> {
        let wall = later.at.saturating_duration_since(self.at).as_secs_f64() * ticks_per_second;
        (wall > 0.0).then(|| (100.0 * ticks as f64 / wall).clamp(0.0, 100.0))
    }

    /// [`CpuSample::busy_pct_at`] with this machine's clock ticks per second.
    pub fn busy_pct(&self, later: &CpuSample) -> f64 {
        self.busy_pct_at(later, clock_ticks_per_second())
    }

    /// Steal between `self` and `later` as a percentage of the wall time, with
    /// `ticks_per_second` clock ticks per second; 0–100. On a virtual machine this is
    /// the time the host kept the CPU from running although it had work: part of what
    /// [`CpuSample::busy_pct_at`] counts as busy, and a stall for every session due then.
    pub fn steal_pct_at(&self, later: &CpuSample, ticks_per_second: f64) -> f64 {
        self.wall_share_pct(
            later,
            later.steal.saturating_sub(self.steal),
            ticks_per_second,
        )
        .unwrap_or(0.0)
    }

    /// [`CpuSample::steal_pct_at`] with this machine's clock ticks per second.
    pub fn steal_pct(&self, later: &CpuSample) -> f64 {
        self.steal_pct_at(later, clock_ticks_per_second())
    }
}

/// What one generator run measured.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Packets sent to the sessions.
    pub sent: u64,
    /// Packets received from the sessions (echoes, silence, anything).
    pub received: u64,
    /// Of those, received while sending (the rate window).
    pub received_in_window: u64,
    /// Echoes matched to a sent packet.
    pub matched: u64,
    /// Send → echo-receive latency of every matched echo, in µs.
    pub latencies_us: Vec<u32>,
    /// Due-send-time → echo-receive latency of the same echoes, in µs (the generator's
    /// own send lateness left out).
    pub due_latencies_us: Vec<u32>,
    /// The session (target index) of each latency sample.
    pub latency_sessions: Vec<u32>,
    /// Seconds packets were sent for.
    pub seconds: f64,
    /// How late the generator itself sent packets (µs after their due time), sampled.
    pub send_lateness_us: Vec<u32>,
    /// How long echoes waited in the generator's socket before it read them (µs after
    /// their kernel receive timestamp), sampled; empty without kernel timestamps.
    pub read_lag_us: Vec<u32>,
    /// Echoes matched without a kernel receive timestamp (timed at the read instead).
    pub untimestamped: u64,
    /// SRTP packets received that did not unprotect (dropped).
    pub srtp_failed: u64,
    /// Per session, the phase (µs into the packet time, on the run's clock) its last
    /// echo arrived at; `u32::MAX` before any. The sessions' phases show how evenly the
    /// engine spreads its work over the packet time (see [`LoadOutcome::phase_spread`]).
    pub echo_phase_us: Vec<u32>,
}

impl LoadOutcome {
    /// Sessions per millisecond of the packet time by the phase their echoes arrive at
    /// (an engine that keeps each session's phase from its caller's sends shows the
    /// generator's even spread; sessions bunched in a few bins make long core turns).
    pub fn phase_spread(&self) -> [u32; PHASE_BINS] {
        let mut bins = [0u32; PHASE_BINS];
        let width = (PTIME.as_micros() as u32 / PHASE_BINS as u32).max(1);
        for &p in &self.echo_phase_us {
            if let Some(b) = bins.get_mut((p / width) as usize) {
                *b += 1;
            }
        }
        bins
    }

    /// Each latency, measured from the packet's *due* send time, minus its session's
    /// smallest: the delay the media path added beyond the session's fixed playout delay
    /// (jitter buffer + pacing phase), in µs. The echo leaves on the session's playout
    /// schedule, which does not move when the generator sends a packet late, so the
    /// reference is the schedule: measured from the actual send time
    /// ([`LoadOutcome::excess_from_sent_us`]), one packet the generator sent X ms late
    /// lowers its session's minimum by X and every other packet of that session then
    /// shows X of "excess".
    pub fn excess_us(&self) -> Vec<u32> {
        excess(&self.due_latencies_us, &self.latency_sessions)
    }

    /// As [`LoadOutcome::excess_us`], from the actual send times (the first definition).
    pub fn excess_from_sent_us(&self) -> Vec<u32> {
        excess(&self.latencies_us, &self.latency_sessions)
    }
}

fn excess(latencies: &[u32], sessions: &[u32]) -> Vec<u32> {
    let mut min: HashMap<u32, u32> = HashMap::new();
    for (&l, &s) in latencies.iter().zip(sessions) {
        let m = min.entry(s).or_insert(u32::MAX);
        *m = (*m).min(l);
    }
    latencies
        .iter()
        .zip(sessions)
        .map(|(&l, s)| l - min.get(s).copied().unwrap_or(0))
        .collect()
}

/// The `--backend` of the load binaries: `uring`, `mmsg` or `auto` (io_uring where it
/// works, else recvmmsg/sendmmsg).
pub fn parse_backend(name: &str) -> anyhow::Result<voxgate_engine::worker::Backend> {
    use voxgate_engine::worker::Backend;
    match name {
        "uring" => Ok(Backend::Uring),
        "mmsg" => Ok(Backend::Mmsg),
        "auto" => Ok(Backend::Auto),
        other => anyhow::bail!("--backend must be uring, mmsg or auto, not {other:?}"),
    }
}

/// The percentile `p` (0..=100) of `v` (sorted in place), 0 if empty.
pub fn percentile(v: &mut [u32], p: f64) -> u32 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[idx.min(v.len() - 1)]
}

/// CPU time (user + system, clock ticks) of this process's thread named `name`.
pub fn thread_cpu_ticks(name: &str) -> Option<u64> {
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            return stat_cpu_ticks(&entry.path().join("stat"));
        }
    }
    None
}

/// CPU time (user + system of all its threads, clock ticks) of process `pid`.
pub fn process_cpu_ticks(pid: u32) -> Option<u64> {
    stat_cpu_ticks(std::path::Path::new(&format!("/proc/{pid}/stat")))
}

/// utime + stime from a `/proc/.../stat` file.
fn stat_cpu_ticks(path: &std::path::Path) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based).
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The generator's command-line options, shared by the load binaries.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct GeneratorArgs {
    /// CPU of the load generator.
    #[arg(long, default_value_t = 1)]
    pub load_cpu: usize,
    /// SCHED_FIFO priority of the measured thread and the generator (0: use --nice);
    /// the machine is shared, see `set_thread_priority`.
    #[arg(long, default_value_t = 10)]
    pub rt_priority: i32,
    /// Nice value when --rt-priority is 0.
    #[arg(long, default_value_t = -20, allow_hyphen_values = true)]
    pub nice: i32,
    /// The generator wakes at most once per this many µs (0: for every packet and echo).
    #[arg(long, default_value_t = 50)]
    pub gen_tick_us: u64,
    /// Milliseconds of the host wake probe on the measured CPU before the system under
    /// test is set up and after it is torn down (0: no host probes); see `probe_host`.
    #[arg(long, default_value_t = 1000)]
    pub host_probe_ms: u64,
}

/// What [`drive`] measured around the sending phase.
#[derive(Debug)]
pub struct Driven {
    /// The generator's outcome.
    pub outcome: LoadOutcome,
    /// The machine around it.
    pub measures: RunMeasures,
}

/// [`drive`] measuring the CPU time of the thread named `thread`, after raising that
/// thread to the generator's priority (a warning on stderr if that fails).
pub fn drive_thread(
    generator: &mut LoadGenerator,
    opts: &GeneratorArgs,
    measured_cpu: usize,
    seconds: f64,
    thread: &str,
    idle: &mut (dyn FnMut() + Send),
) -> anyhow::Result<Driven> {
    if !set_thread_priority(Some(thread), opts.rt_priority, opts.nice) {
        eprintln!("could not raise the priority of {thread}");
    }
    drive(
        generator,
        opts,
        measured_cpu,
        seconds,
        &|| thread_cpu_ticks(thread),
        idle,
    )
}

/// The run's report, with the host probed on `cpu` again now that the system under test
/// is gone (beside `host_before`, taken before it was set up).
pub fn report_after(
    backend: &str,
    calls: usize,
    driven: Driven,
    cpu: usize,
    opts: &GeneratorArgs,
    host_before: Option<WakeProbe>,
) -> LoadReport {
    let Driven {
        outcome,
        mut measures,
    } = driven;
    measures.set_host(cpu, host_before, probe_host(cpu, opts));
    LoadReport::new(backend, calls, outcome, &measures)
}

/// The measured CPU and the host around a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunMeasures {
    /// Busy % of the measured CPU.
    pub cpu_pct: f64,
    /// `cpu_ticks` over the sending phase, % of one CPU (-1 if unreadable).
    pub thread_pct: f64,
    /// 1-minute load average at the start.
    pub loadavg: f64,
    /// Steal % of the measured CPU over the sending phase (-1 if unreadable).
    pub steal_pct: f64,
    /// The host wake probe on the measured CPU just before and just after the run.
    pub host_wake: Option<(WakeProbe, WakeProbe)>,
}

/// The wake probe's period: the media core's timer granularity.
const HOST_PROBE_PERIOD: Duration = Duration::from_micros(250);

/// Runs `generator` (with `opts`' tick) from a thread pinned to `opts.load_cpu` for
/// `seconds` (plus a 500 ms drain), calling `idle` between batches, and measures the busy
/// % of `measured_cpu` and the growth of `cpu_ticks` (the measured thread or process)
/// over the sending phase.
pub fn drive(
    generator: &mut LoadGenerator,
    opts: &GeneratorArgs,
    measured_cpu: usize,
    seconds: f64,
    cpu_ticks: &(dyn Fn() -> Option<u64> + Sync),
    idle: &mut (dyn FnMut() + Send),
) -> anyhow::Result<Driven> {
    generator.set_tick(Duration::from_micros(opts.gen_tick_us));
    let generator = &*generator;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                pin_and_raise("the generator", opts.load_cpu, opts.rt_priority, opts.nice);
                let loadavg = loadavg();
                let ticks_before = cpu_ticks();
                let mut ticks_after = None;
                let before = CpuSample::read(measured_cpu);
                let mut after = None;
                let mut cpu_done = false;
                let start = Instant::now();
                let outcome = generator.run(seconds, Duration::from_millis(500), || {
                    idle();
                    if !cpu_done && start.elapsed().as_secs_f64() >= seconds {
                        after = CpuSample::read(measured_cpu).ok();
                        ticks_after = cpu_ticks();
                        cpu_done = true;
                    }
                })?;
                let (cpu_pct, steal_pct) = match (before, after) {
                    (Ok(b), Some(a)) => (b.busy_pct(&a), b.steal_pct(&a)),
                    _ => (-1.0, -1.0),
                };
                let thread_pct = match (ticks_before, ticks_after) {
                    (Some(b), Some(a)) => {
                        100.0 * (a.saturating_sub(b)) as f64 / clock_ticks_per_second() / seconds
                    }
                    _ => -1.0,
                };
                Ok(Driven {
                    outcome,
                    measures: RunMeasures {
                        cpu_pct,
                        thread_pct,
                        loadavg,
                        steal_pct,
                        host_wake: None,
                    },
                })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("generator thread panicked"))?
    })
}

/// Probes the host on `cpu` with `opts`' scheduling for `opts.host_probe_ms` (None if
/// 0). A binary calls it before it sets up the system under test and again after it
/// has torn it down: a media engine with open sessions sends silence, and a probe
/// beside it would measure the engine's turns instead of the host.
pub fn probe_host(cpu: usize, opts: &GeneratorArgs) -> Option<WakeProbe> {
    (opts.host_probe_ms > 0).then(|| {
        host_wake_probe(
            cpu,
            opts.rt_priority,
            opts.nice,
            Duration::from_millis(opts.host_probe_ms),
            HOST_PROBE_PERIOD,
        )
    })
}

impl RunMeasures {
    /// Records (and prints) the host probes taken before and after the run.
    pub fn set_host(&mut self, cpu: usize, before: Option<WakeProbe>, after: Option<WakeProbe>) {
        let (Some(b), Some(a)) = (before, after) else {
            return;
        };
        self.host_wake = Some((b, a));
        eprintln!(
            "voxgate-load: host wake probe on CPU {cpu} ({} µs sleeps): before p50 {} p99 {} max {} us, {} % over 1 ms; after p50 {} p99 {} max {} us, {} % over 1 ms",
            HOST_PROBE_PERIOD.as_micros(),
            b.p50_us,
            b.p99_us,
            b.max_us,
            b.over_1ms_pct,
            a.p50_us,
            a.p99_us,
            a.max_us,
            a.over_1ms_pct
        );
    }
}

/// Prints (stderr) the generator's send lateness and the latency beyond each session's
/// minimum; takes the lateness samples out of `outcome`.
pub fn print_latency_summary(outcome: &mut LoadOutcome) {
    let mut lateness = std::mem::take(&mut outcome.send_lateness_us);
    eprintln!(
        "voxgate-load: generator send lateness p50 {} us p99 {} us max {} us",
        percentile(&mut lateness, 50.0),
        percentile(&mut lateness, 99.0),
        percentile(&mut lateness, 100.0)
    );
    let mut lag = std::mem::take(&mut outcome.read_lag_us);
    eprintln!(
        "voxgate-load: echoes read from the socket after their arrival p50 {} us p99 {} us max {} us ({} matched without a kernel timestamp)",
        percentile(&mut lag, 50.0),
        percentile(&mut lag, 99.0),
        percentile(&mut lag, 100.0),
        outcome.untimestamped
    );
    let mut excess = outcome.excess_us();
    eprintln!(
        "voxgate-load: latency beyond each session's minimum: p50 {} p90 {} p99 {} p99.9 {} max {} us",
        percentile(&mut excess, 50.0),
        percentile(&mut excess, 90.0),
        percentile(&mut excess, 99.0),
        percentile(&mut excess, 99.9),
        percentile(&mut excess, 100.0)
    );
    let bins = outcome.phase_spread();
    let total: u32 = bins.iter().sum();
    eprintln!(
        "voxgate-load: sessions by the phase of their echoes, per ms of the packet time: {bins:?} (largest bin {:.1} % of {total}; an even spread is {:.1} %)",
        100.0 * f64::from(bins.iter().copied().max().unwrap_or(0)) / f64::from(total.max(1)),
        100.0 / PHASE_BINS as f64
    );
}

/// How late a thread on one CPU woke from timed sleeps: the host's own floor under any
/// event loop's lateness, measured on the engine's CPU before and after a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct WakeProbe {
    /// Sleeps measured.
    pub wakes: u32,
    /// Median lateness past the deadline, µs.
    pub p50_us: u32,
    /// 99th percentile, µs.
    pub p99_us: u32,
    /// Largest, µs.
    pub max_us: u32,
    /// Wakes later than 1 ms, % of all.
    pub over_1ms_pct: f64,
}

impl WakeProbe {
    /// Summarises lateness samples (µs).
    pub fn from_samples(late_us: &mut [u32]) -> WakeProbe {
        let over = late_us.iter().filter(|&&l| l > 1000).count();
        WakeProbe {
            wakes: late_us.len() as u32,
            p50_us: percentile(late_us, 50.0),
            p99_us: percentile(late_us, 99.0),
            max_us: percentile(late_us, 100.0),
            over_1ms_pct: round3(100.0 * over as f64 / late_us.len().max(1) as f64),
        }
    }
}

/// Sleeps to deadlines `period` apart for `duration` on a thread pinned to `cpu`, with
/// the measured threads' scheduling (`rt_priority` / `nice`) and no timer slack, and
/// returns how late it woke. A media core that waits for its next timer cannot be
/// served earlier than this; on this VM the figure changes from minute to minute (an
/// idle vCPU is halted, and the host decides when it runs again).
pub fn host_wake_probe(
    cpu: usize,
    rt_priority: i32,
    nice: i32,
    duration: Duration,
    period: Duration,
) -> WakeProbe {
    let period = period.max(Duration::from_micros(10));
    let count = (duration.as_nanos() / period.as_nanos()) as usize;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                // Without its priority it measures the other tasks on that CPU too.
                pin_and_raise("the wake probe", cpu, rt_priority, nice);
                // SAFETY: PR_SET_TIMERSLACK takes a number, no pointer.
                unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
                let mut late_us = Vec::with_capacity(count);
                let mut deadline = Instant::now();
                for _ in 0..count {
                    deadline += period;
                    let now = Instant::now();
                    if deadline > now {
                        std::thread::sleep(deadline - now);
                    }
                    let woke = Instant::now();
                    late_us.push(woke.saturating_duration_since(deadline).as_micros() as u32);
                    // A stall longer than a period restarts the schedule from now, so one
                    // stall is one late wake, not a run of them.
                    if woke > deadline + period {
                        deadline = woke;
                    }
                }
                WakeProbe::from_samples(&mut late_us)
            })
            .join()
            .unwrap_or_default()
    })
}

/// Pins the calling thread (`who`, for the messages) to `cpu` and gives it the measured
/// threads' scheduling ([`set_thread_priority`]), saying on stderr what it could not do.
fn pin_and_raise(who: &str, cpu: usize, rt_priority: i32, nice: i32) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        eprintln!("voxgate-load: could not pin {who} to CPU {cpu}");
    }
    if !set_thread_priority(None, rt_priority, nice) {
        eprintln!("voxgate-load: could not raise the priority of {who} on CPU {cpu}");
    }
}

/// Gives this process's thread named `name` (None: the calling thread) a real-time
/// priority (SCHED_FIFO `rt_priority`, when > 0) or else the nice value `nice`.
///
/// The benchmark machine is shared and its scheduler groups processes by session
/// (autogroup), so a nice value alone does not keep other sessions' builds from queueing
/// in front of the measured threads; SCHED_FIFO does. Returns false if it could not.
pub fn set_thread_priority(name: Option<&str>, rt_priority: i32, nice: i32) -> bool {
    let tid: libc::id_t = match name {
        None => 0,
        Some(name) => {
            let found = std::fs::read_dir("/proc/self/task").ok().and_then(|dir| {
                dir.flatten().find_map(|e| {
                    let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                    (comm.trim_end() == name)
                        .then(|| e.file_name().to_string_lossy().parse::<libc::id_t>().ok())
                        .flatten()
                })
            });
            match found {
                Some(t) => t,
                None => return false,
            }
        }
    };
    if rt_priority > 0 {
        let param = libc::sched_param {
            sched_priority: rt_priority,
        };
        // SAFETY: a live sched_param; on Linux a TID (or 0) names one thread.
        return unsafe {
            libc::sched_setscheduler(tid as libc::pid_t, libc::SCHED_FIFO, &param) == 0
        };
    }
    // SAFETY: setpriority takes no pointers; on Linux PRIO_PROCESS with a TID (or 0)
    // changes that one thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) == 0 }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

impl LoadOutcome {
    /// The percentile `p` (0..=100) of the latencies, in µs.
    pub fn percentile_us(&mut self, p: f64) -> u32 {
        let mut v = self.latencies_us.clone();
        percentile(&mut v, p)
    }
}

fn set_buffer(sock: &UdpSocket, bytes: usize) {
    let s = socket2::SockRef::from(sock);
    let _ = s.set_recv_buffer_size(bytes);
    let _ = s.set_send_buffer_size(bytes);
    let v = bytes as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
        // SAFETY: setsockopt with a live c_int and its size; failure (not root) is fine.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}

/// A target's SRTP contexts: (protect what is sent, unprotect what comes back).
type SrtpPair = (Option<SrtpContext>, Option<SrtpContext>);

/// The RTP load generator: one socket, N targets.
#[derive(Debug)]
pub struct LoadGenerator {
    socket: UdpSocket,
    targets: Vec<SocketAddr>,
    by_port: HashMap<u16, usize>,
    /// Per target: (protect what we send, unprotect what comes back), each when that
    /// direction is SRTP.
    srtp: Mutex<Vec<SrtpPair>>,
    /// Zero: wake for every due send and every arriving echo. Otherwise: wake at most
    /// once per `tick` (send what is due, take what arrived), see [`LoadGenerator::set_tick`].
    tick: Duration,
    /// Pre-encoded payloads sent in a cycle instead of the µ-law tone (Opus), with the
    /// RTP timestamp step per packet; echoes of them are counted, not matched.
    payloads: Option<(Vec<Vec<u8>>, u32)>,
}

impl LoadGenerator {
    /// Binds the generator socket on 127.0.0.1.
    pub fn bind() -> io::Result<LoadGenerator> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        set_buffer(&socket, 32 << 20);
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a live c_int and its size.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            eprintln!(
                "voxgate-load: no kernel receive timestamps ({}); echoes are timed when read",
                io::Error::last_os_error()
            );
        }
        Ok(LoadGenerator {
            socket,
            targets: Vec::new(),
            by_port: HashMap::new(),
            srtp: Mutex::new(Vec::new()),
            tick: Duration::ZERO,
            payloads: None,
        })
    }

    /// The generator's address (the sessions' remote RTP address).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends these payloads in a cycle (each at most 160 bytes, longer ones are cut)
    /// with `ts_step` timestamp units per packet, instead of the µ-law tone; for codecs
    /// whose payload does not survive the echo (Opus), so echoes are not latency-matched.
    pub fn set_payloads(&mut self, frames: Vec<Vec<u8>>, ts_step: u32) {
        if !frames.is_empty() {
            self.payloads = Some((frames, ts_step));
        }
    }

    /// Adds a session to send to (its local RTP address), which echoes from there.
    pub fn add_target(&mut self, addr: SocketAddr) {
        self.add_relayed_target(addr, addr.port(), None, None);
    }

    /// Binds `n` UDP sockets on 127.0.0.1 (ports chosen by the kernel) and adds each as
    /// a target: the sockets of an echo system under test that is not the engine.
    pub fn add_loopback_sockets(&mut self, n: usize) -> io::Result<Vec<std::net::UdpSocket>> {
        (0..n)
            .map(|_| {
                let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
                self.add_target(s.local_addr()?);
                Ok(s)
            })
            .collect()
    }

    /// Adds a stream sent to `send_to` whose packets come back from port `reply_from`
    /// (a relay's other leg, e.g. rtpengine's; the echo sessions reply from the port
    /// they are sent to), protected and unprotected with the given SRTP contexts.
    pub fn add_relayed_target(
        &mut self,
        send_to: SocketAddr,
        reply_from: u16,
        protect: Option<SrtpContext>,
        unprotect: Option<SrtpContext>,
    ) {
        self.by_port.insert(reply_from, self.targets.len());
        self.targets.push(send_to);
        self.srtp
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((protect, unprotect));
    }

    /// Wakes at most once per `tick` instead of for every due packet and echo. Waking
    /// for every packet kept the SCHED_FIFO generator ~92 % busy at 1,400 sessions
    /// (SRTP), into the kernel's RT throttling (95 % of each second): 50 ms stalls at
    /// the end of some seconds, seen as loss. Costs up to `tick` of send lateness (the
    /// due-based excess includes it) and of receive-time quantisation.
    pub fn set_tick(&mut self, tick: Duration) {
        self.tick = tick;
    }

    /// Adds a session spoken to in SRTP: `protect` keyed with the key the session
    /// receives with, `unprotect` with the key it sends with.
    pub fn add_srtp_target(
        &mut self,
        addr: SocketAddr,
        protect: SrtpContext,
        unprotect: SrtpContext,
    ) {
        self.add_relayed_target(addr, addr.port(), Some(protect), Some(unprotect));
    }

    /// Sends for `seconds`, then keeps receiving for `drain` more; calls `idle` between
    /// batches (to drain engine events). Runs on the calling thread.
    pub fn run(
        &self,
        seconds: f64,
        drain: Duration,
        mut idle: impl FnMut(),
    ) -> io::Result<LoadOutcome> {
        let n = self.targets.len();
        let mut out = LoadOutcome::default();
        if n == 0 {
            return Ok(out);
        }
        let fd = self.socket.as_raw_fd();
        let mut srtp = self
            .srtp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let step = PTIME.as_nanos() as f64 / n as f64;
        out.echo_phase_us = vec![u32::MAX; n];
        let mut sent_at: Vec<[u64; RING]> = vec![[0u64; RING]; n];
        let mut tone = vec![[0u8; SAMPLES]; 50];
        for (f, t) in tone.iter_mut().enumerate() {
            tone_frame(f as u64, t);
        }
        let send_for = Duration::from_secs_f64(seconds);
        let mut g: u64 = 0;
        let mut sbufs = vec![[0u8; SEND_BUF]; BATCH];
        let mut slens = [0usize; BATCH];
        let ts_step = self.payloads.as_ref().map_or(SAMPLES as u32, |p| p.1);
        let mut saddrs: Vec<libc::sockaddr_in> = (0..BATCH).map(|_| zero_sockaddr_in()).collect();
        let mut siov: Vec<libc::iovec> = (0..BATCH)
            .map(|_| libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            })
            .collect();
        // SAFETY: all-zero mmsghdr is valid (null pointers, zero lengths).
        let mut shdr: Vec<libc::mmsghdr> =
            (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut rb = RecvBatch::new();
        // What the sessions sent before the run (codec silence from their opening on)
        // is not part of it: read and dropped here. Read in the first turn, it held up
        // the first sends by ~12 ms at 1,400 SRTP sessions, and the burst of overdue
        // sends that followed reached ~900 sessions at once, which then stayed in phase
        // (and made the engine's turns long) for the whole run.
        for _ in 0..100_000 {
            if rb.recv(fd) == 0 {
                break;
            }
        }
        let start = Instant::now();
        let end = send_for + drain;
        loop {
            let now = start.elapsed();
            if now >= end {
                break;
            }
            // Send everything due.
            let mut b = 0;
            while now < send_for && (g as f64 * step) as u128 <= now.as_nanos() {
                let i = (g % n as u64) as usize;
                let k = (g / n as u64) as u32;
                let pkt = &mut sbufs[b];
                pkt[0] = 0x80;
                pkt[1] = if k == 0 { 0x80 } else { 0 };
                pkt[2..4].copy_from_slice(&(k as u16).to_be_bytes());
                pkt[4..8].copy_from_slice(&(k.wrapping_mul(ts_step)).to_be_bytes());
                pkt[8..12].copy_from_slice(&(0x1000_0000u32 + i as u32).to_be_bytes());
                slens[b] = match &self.payloads {
                    Some((frames, _)) => {
                        let f = &frames[k as usize % frames.len()];
                        let len = f.len().min(SAMPLES);
                        pkt[RTP_HEADER..RTP_HEADER + len].copy_from_slice(&f[..len]);
                        RTP_HEADER + len
                    }
                    None => {
                        pkt[RTP_HEADER..RTP_HEADER + SAMPLES]
                            .copy_from_slice(&tone[(k % 50) as usize]);
                        put_counter(k, &mut pkt[RTP_HEADER..RTP_HEADER + 3]);
                        RTP_HEADER + SAMPLES
                    }
                };
                if let Some((Some(tx), _)) = srtp.get_mut(i) {
                    match tx.protect_rtp(pkt, slens[b]) {
                        Ok(len) => slens[b] = len,
                        // Unreachable within a key's lifetime; sent as is, the engine counts it.
                        Err(_) => out.srtp_failed += 1,
                    }
                }
                saddrs[b] = to_sockaddr_in(self.targets[i]);
                let slot = &mut sent_at[i][k as usize % RING];
                let t_send = start.elapsed().as_nanos() as u64;
                *slot = t_send + 1;
                if g % 16 == 0 {
                    let due = (g as f64 * step) as u64;
                    out.send_lateness_us
                        .push((t_send.saturating_sub(due) / 1000).min(u64::from(u32::MAX)) as u32);
                }
                g += 1;
                out.sent += 1;
                b += 1;
                if b == BATCH {
                    send_batch(fd, &mut sbufs, &slens, &mut saddrs, &mut siov, &mut shdr, b);
                    b = 0;
                }
            }
            if b > 0 {
                send_batch(fd, &mut sbufs, &slens, &mut saddrs, &mut siov, &mut shdr, b);
            }
            // Receive what is ready (a bounded amount, so sends stay on schedule; the
            // rest waits for the next turn).
            let mut rounds = 0;
            loop {
                let got = rb.recv(fd);
                if got == 0 {
                    break;
                }
                let read_at = start.elapsed().as_nanos() as u64;
                let real_at = realtime_ns();
                for j in 0..got {
                    // The kernel's receive time, on this run's clock: its distance
                    // back from the realtime clock read just now.
                    let t = match kernel_rx_ns(&rb.hdr[j].msg_hdr) {
                        Some(rx) => {
                            let lag = real_at.saturating_sub(rx);
                            if out.received % 16 == 0 {
                                out.read_lag_us
                                    .push((lag / 1000).min(u64::from(u32::MAX)) as u32);
                            }
                            read_at.saturating_sub(lag)
                        }
                        None => {
                            out.untimestamped += 1;
                            read_at
                        }
                    };
                    let in_window = t < send_for.as_nanos() as u64;
                    out.received += 1;
                    out.received_in_window += u64::from(in_window);
                    let mut len = rb.hdr[j].msg_len as usize;
                    let port = u16::from_be(rb.addrs[j].sin_port);
                    let Some(&i) = self.by_port.get(&port) else {
                        continue;
                    };
                    if let Some((_, Some(rx))) = srtp.get_mut(i) {
                        let pkt = &mut rb.bufs[j][..len.min(2048)];
                        // rtcp-mux (RFC 5761): RTCP packet types 192..=223 are SRTCP.
                        if matches!(pkt.get(1), Some(192..=223)) {
                            if rx.unprotect_rtcp(pkt).is_err() {
                                out.srtp_failed += 1;
                            }
                            continue;
                        }
                        match rx.unprotect_rtp(pkt) {
                            Ok(n) => len = n,
                            Err(_) => {
                                out.srtp_failed += 1;
                                continue;
                            }
                        }
                    }
                    let Some(k) = rb.bufs[j]
                        .get(..len)
                        .and_then(rtp_payload)
                        .and_then(get_counter)
                    else {
                        continue;
                    };
                    let slot = &mut sent_at[i][k as usize % RING];
                    if *slot != 0 && u64::from(k) * n as u64 + i as u64 <= g {
                        let lat = t.saturating_sub(*slot - 1) / 1000;
                        out.latencies_us.push(lat.min(u64::from(u32::MAX)) as u32);
                        let due = ((u64::from(k) * n as u64 + i as u64) as f64 * step) as u64;
                        let from_due = t.saturating_sub(due) / 1000;
                        out.due_latencies_us
                            .push(from_due.min(u64::from(u32::MAX)) as u32);
                        out.latency_sessions.push(i as u32);
                        out.echo_phase_us[i] = ((t / 1000) % PTIME.as_micros() as u64) as u32;
                        out.matched += 1;
                        *slot = 0;
                    }
                }
                rounds += 1;
                if got < BATCH || rounds >= RECV_ROUNDS_PER_TURN {
                    break;
                }
            }
            idle();
            // Sleep until the next send (or 1 ms while draining).
            let next = if now < send_for {
                Duration::from_nanos((g as f64 * step) as u64).max(now + self.tick)
            } else {
                start.elapsed() + Duration::from_millis(1)
            };
            let wait = next.saturating_sub(start.elapsed());
            if !wait.is_zero() {
                let ts = libc::timespec {
                    tv_sec: wait.as_secs() as libc::time_t,
                    tv_nsec: wait.subsec_nanos() as libc::c_long,
                };
                let mut pfd = libc::pollfd {
                    fd,
                    events: if self.tick.is_zero() { libc::POLLIN } else { 0 },
                    revents: 0,
                };
                // SAFETY: one live pollfd, a live timespec, no signal mask.
                unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
            }
        }
        out.seconds = seconds;
        Ok(out)
    }
}

fn zero_sockaddr_in() -> libc::sockaddr_in {
    // SAFETY: all-zero sockaddr_in is valid.
    unsafe { std::mem::zeroed() }
}

fn to_sockaddr_in(addr: SocketAddr) -> libc::sockaddr_in {
    let mut sin = zero_sockaddr_in();
    if let SocketAddr::V4(a) = addr {
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = a.port().to_be();
        sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
    }
    sin
}

#[allow(clippy::too_many_arguments)]
fn send_batch(
    fd: i32,
    bufs: &mut [[u8; SEND_BUF]],
    lens: &[usize],
    addrs: &mut [libc::sockaddr_in],
    iov: &mut [libc::iovec],
    hdr: &mut [libc::mmsghdr],
    n: usize,
) {
    for j in 0..n {
        iov[j].iov_base = bufs[j].as_mut_ptr().cast();
        iov[j].iov_len = lens[j].min(SEND_BUF);
        hdr[j].msg_hdr.msg_name = (&mut addrs[j] as *mut libc::sockaddr_in).cast();
        hdr[j].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        hdr[j].msg_hdr.msg_iov = &mut iov[j];
        hdr[j].msg_hdr.msg_iovlen = 1;
    }
    let mut at = 0;
    let mut tries = 0;
    while at < n && tries < 1000 {
        // SAFETY: headers [at, n) point at live buffers/addresses owned by the caller.
        let r = unsafe { libc::sendmmsg(fd, hdr[at..n].as_mut_ptr(), (n - at) as libc::c_uint, 0) };
        if r > 0 {
            at += r as usize;
        }
        tries += 1;
    }
}

/// Control-message room per received datagram, in u64 words (aligned for cmsghdr): one
/// `SCM_TIMESTAMPNS` (16 + 16 bytes) with room to spare.
const CTL_WORDS: usize = 8;

/// The realtime clock (the clock of `SO_TIMESTAMPNS`), in ns.
fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    timespec_ns(&ts)
}

fn timespec_ns(ts: &libc::timespec) -> u64 {
    (ts.tv_sec.max(0) as u64) * 1_000_000_000 + ts.tv_nsec.max(0) as u64
}

/// The `SCM_TIMESTAMPNS` of a received message (realtime ns), if the kernel gave one.
fn kernel_rx_ns(msg: &libc::msghdr) -> Option<u64> {
    if msg.msg_control.is_null() || (msg.msg_flags & libc::MSG_CTRUNC) != 0 {
        return None;
    }
    // SAFETY: msg_control/msg_controllen describe the buffer the kernel filled for this
    // message (set by recv_batch, length updated by recvmmsg); the CMSG_* macros stay
    // inside it, and the timestamp is read unaligned from its data.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                return Some(timespec_ns(&ts));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

/// Receive buffers, addresses, headers and control room for one `recvmmsg` of up to
/// [`BATCH`] datagrams.
struct RecvBatch {
    bufs: Vec<[u8; 2048]>,
    addrs: Vec<libc::sockaddr_in>,
    iov: Vec<libc::iovec>,
    hdr: Vec<libc::mmsghdr>,
    ctl: Vec<[u64; CTL_WORDS]>,
}

impl RecvBatch {
    fn new() -> Self {
        RecvBatch {
            bufs: vec![[0u8; 2048]; BATCH],
            addrs: (0..BATCH).map(|_| zero_sockaddr_in()).collect(),
            iov: (0..BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            // SAFETY: all-zero mmsghdr is valid (null pointers, zero lengths).
            hdr: (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect(),
            ctl: vec![[0u64; CTL_WORDS]; BATCH],
        }
    }

    /// Takes what is ready on `fd` without waiting; returns how many datagrams (their
    /// bytes, sources, lengths and control data in the first that many entries).
    fn recv(&mut self, fd: i32) -> usize {
        for j in 0..BATCH {
            self.hdr[j].msg_hdr.msg_control = self.ctl[j].as_mut_ptr().cast();
            self.hdr[j].msg_hdr.msg_controllen = std::mem::size_of::<[u64; CTL_WORDS]>() as _;
            self.hdr[j].msg_hdr.msg_flags = 0;
            self.iov[j].iov_base = self.bufs[j].as_mut_ptr().cast();
            self.iov[j].iov_len = self.bufs[j].len();
            self.hdr[j].msg_hdr.msg_name = (&mut self.addrs[j] as *mut libc::sockaddr_in).cast();
            self.hdr[j].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            self.hdr[j].msg_hdr.msg_iov = &mut self.iov[j];
            self.hdr[j].msg_hdr.msg_iovlen = 1;
            self.hdr[j].msg_len = 0;
        }
        // SAFETY: BATCH headers pointing at this struct's live buffers, addresses and
        // control buffers.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdr.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r > 0 {
            r as usize
        } else {
            0
        }
    }
}

/// The last output line of `voxgate-load`.
#[derive(Debug, serde::Serialize)]
pub struct LoadReport {
    /// "uring", "mmsg" or "tokio-uring".
    pub backend: String,
    /// Sessions.
    pub calls: usize,
    /// Seconds of sending.
    pub seconds: f64,
    /// Packets per second sent to the engine.
    pub pps_in: f64,
    /// Packets per second received from the engine.
    pub pps_out: f64,
    /// Sent packets whose echo never came back, %.
    pub loss_pct: f64,
    /// Matched echoes later than p50 + one packet time (20 ms), %.
    pub late_pct: f64,
    /// Median send → echo latency, µs.
    pub p50_us: u32,
    /// 99th percentile send → echo latency, µs.
    pub p99_us: u32,
    /// Busy % of the engine's CPU over the run (/proc/stat): includes anything else
    /// the shared machine ran there.
    pub engine_cpu_pct: f64,
    /// CPU time of the media thread itself (user + system) over the run, % of one CPU.
    pub engine_thread_cpu_pct: f64,
    /// p99 of latency minus the session's own minimum latency: what the media path
    /// added beyond the fixed jitter-buffer/pacing delay, µs.
    pub p99_excess_us: u32,
    /// The same from the actual send times (the first definition; inflated by the
    /// generator's late sends, see `LoadOutcome::excess_us`), µs.
    pub p99_excess_sent_us: u32,
    /// 1-minute load average when the run started (the machine is shared).
    pub loadavg: f64,
    /// SRTP (AES_CM_128_HMAC_SHA1_80) in both directions.
    pub srtp: bool,
    /// The engine's own view (voxgate's cores only): the 99th percentile of how late
    /// its core served session timers over the run (the upper bound of the histogram
    /// bucket holding it), µs. Low while the echo's p99 excess is high puts the tail
    /// outside the core's loop (the generator, the host); high puts it in the core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_service_late_p99_us: Option<u64>,
    /// Steal % of the engine's CPU over the run (/proc/stat): time the host ran
    /// something else while the engine had work; -1 if unreadable.
    pub engine_cpu_steal_pct: f64,
    /// The host wake probe's p99 on the engine's CPU just before / just after the run,
    /// µs (`host_wake_probe`): the floor under any p99 this run could show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_wake_p99_us_before: Option<u32>,
    /// See `host_wake_p99_us_before`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_wake_p99_us_after: Option<u32>,
}

impl LoadReport {
    /// Builds the report from an outcome and what was measured around its sending phase.
    pub fn new(backend: &str, calls: usize, mut out: LoadOutcome, m: &RunMeasures) -> LoadReport {
        let mut excess = out.excess_us();
        let p99_excess_us = percentile(&mut excess, 99.0);
        let p99_excess_sent_us = percentile(&mut out.excess_from_sent_us(), 99.0);
        let p50 = out.percentile_us(50.0);
        let p99 = out.percentile_us(99.0);
        let late_limit = u64::from(p50) + PTIME.as_micros() as u64;
        let late = out
            .latencies_us
            .iter()
            .filter(|&&l| u64::from(l) > late_limit)
            .count();
        let secs = out.seconds.max(1e-9);
        LoadReport {
            backend: backend.to_string(),
            calls,
            seconds: out.seconds,
            pps_in: (out.sent as f64 / secs).round(),
            pps_out: (out.received_in_window as f64 / secs).round(),
            loss_pct: round3(
                100.0 * (out.sent.saturating_sub(out.matched)) as f64 / (out.sent.max(1)) as f64,
            ),
            late_pct: round3(100.0 * late as f64 / (out.matched.max(1)) as f64),
            p50_us: p50,
            p99_us: p99,
            engine_cpu_pct: round3(m.cpu_pct),
            engine_thread_cpu_pct: round3(m.thread_pct),
            p99_excess_us,
            p99_excess_sent_us,
            loadavg: m.loadavg,
            srtp: false,
            engine_service_late_p99_us: None,
            engine_cpu_steal_pct: round3(m.steal_pct),
            host_wake_p99_us_before: m.host_wake.map(|(b, _)| b.p99_us),
            host_wake_p99_us_after: m.host_wake.map(|(_, a)| a.p99_us),
        }
    }
}

/// The 1-minute load average from /proc/loadavg (0 if unreadable).
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_round_trips_and_rejects_other_bytes() {
        for k in [0u32, 1, 126, 127, 128, 16128, 2_000_000] {
            let mut b = [0u8; 3];
            put_counter(k, &mut b);
            assert!(b.iter().all(|x| *x >= 0x80 && *x != 0xff));
            assert_eq!(get_counter(&b), Some(k % (127 * 127 * 127)));
        }
        assert_eq!(get_counter(&[0x7f, 0x80, 0x80]), None);
        assert_eq!(get_counter(&[0xff, 0x80, 0x80]), None);
        assert_eq!(get_counter(&[0x80]), None);
    }

    #[test]
    fn echoes_carry_the_kernel_receive_time() {
        let generator = LoadGenerator::bind().expect("bind");
        let to = generator.local_addr().expect("addr");
        let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
        let before = realtime_ns();
        peer.send_to(b"echo", to).expect("send");
        let fd = generator.socket.as_raw_fd();
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd; waits at most 5 s for the datagram.
        let ready = unsafe { libc::poll(&mut pfd, 1, 5000) };
        assert_eq!(ready, 1, "datagram did not arrive");
        let mut rb = RecvBatch::new();
        let got = rb.recv(fd);
        let after = realtime_ns();
        assert_eq!(got, 1);
        assert_eq!(&rb.bufs[0][..rb.hdr[0].msg_len as usize], b"echo");
        let rx = kernel_rx_ns(&rb.hdr[0].msg_hdr).expect("no SCM_TIMESTAMPNS");
        assert!(before <= rx && rx <= after, "{before} <= {rx} <= {after}");
        // A message without control data has no timestamp.
        // SAFETY: all-zero msghdr is valid (null control pointer).
        let empty: libc::msghdr = unsafe { std::mem::zeroed() };
        assert_eq!(kernel_rx_ns(&empty), None);
    }

    #[test]
    fn what_the_sessions_sent_before_the_run_is_not_part_of_it() {
        let mut generator = LoadGenerator::bind().expect("bind");
        let to = generator.local_addr().expect("addr");
        let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
        generator.add_target(peer.local_addr().expect("peer addr"));
        // A session's codec silence, queued before the run starts.
        for seq in 0..50u8 {
            peer.send_to(&[0x80, 0, 0, seq, 0, 0, 0, 0, 0, 0, 0, 1], to)
                .expect("send");
        }
        peer.set_read_timeout(Some(Duration::from_millis(1500)))
            .expect("timeout");
        // The peer echoes what the run sends, until it stops sending.
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut echoed = 0u64;
            while let Ok((len, from)) = peer.recv_from(&mut buf) {
                peer.send_to(&buf[..len], from).expect("echo");
                echoed += 1;
            }
            echoed
        });
        let out = generator
            .run(0.2, Duration::from_millis(1000), || {})
            .expect("run");
        let echoed = echo.join().expect("echo thread");
        assert!(out.sent >= 5, "sent {}", out.sent);
        assert_eq!(echoed, out.sent);
        assert_eq!(out.received, echoed, "only this run's echoes are counted");
        assert_eq!(out.matched, out.sent);
        // One session: its phase is in one bin.
        assert_eq!(out.phase_spread().iter().sum::<u32>(), 1);
    }

    #[test]
    fn phases_are_binned_by_millisecond_of_the_packet_time() {
        let out = LoadOutcome {
            echo_phase_us: vec![0, 999, 1_000, 19_999, 7_500, u32::MAX],
            ..LoadOutcome::default()
        };
        let bins = out.phase_spread();
        assert_eq!(bins[0], 2);
        assert_eq!(bins[1], 1);
        assert_eq!(bins[7], 1);
        assert_eq!(bins[19], 1);
        assert_eq!(
            bins.iter().sum::<u32>(),
            5,
            "a session without echoes is not binned"
        );
    }

    #[test]
    fn the_wake_probe_sleeps_every_period_and_reports_how_late() {
        let probe = host_wake_probe(0, 0, 0, Duration::from_millis(20), Duration::from_millis(2));
        assert_eq!(probe.wakes, 10);
        assert!(probe.p50_us <= probe.p99_us && probe.p99_us <= probe.max_us);
        let mut late = vec![10, 20, 2000, 30, 40];
        let s = WakeProbe::from_samples(&mut late);
        assert_eq!((s.wakes, s.p50_us, s.max_us), (5, 30, 2000));
        assert_eq!(s.over_1ms_pct, 20.0);
        assert_eq!(WakeProbe::from_samples(&mut []).wakes, 0);
    }

    #[test]
    fn cpu_busy_is_wall_time_minus_idle_and_iowait() {
        let t0 = Instant::now();
        // Fields: user nice system idle iowait irq softirq steal.
        let a = CpuSample::from_line("cpu0 1000 0 500 2000 300 0 10 0 0 0", t0).unwrap();
        // 6 s later at 100 ticks/s: 249 ticks idle or iowait of 600; the sampled busy
        // fields grew by 269 only (they would say 52 %).
        let b = CpuSample::from_line(
            "cpu0 1088 0 653 2000 549 0 38 1 0 0",
            t0 + Duration::from_secs(6),
        )
        .unwrap();
        let busy = a.busy_pct_at(&b, 100.0);
        assert!((busy - 58.5).abs() < 0.01, "{busy}");
        // Steal (the eighth field) grew by 1 tick of 600.
        let steal = a.steal_pct_at(&b, 100.0);
        assert!((steal - 100.0 / 600.0).abs() < 1e-6, "{steal}");
        // A kernel that prints no steal field reads as none.
        let short = CpuSample::from_line("cpu0 1000 0 500 2000 300", t0).unwrap();
        assert_eq!(short.steal_pct_at(&short, 100.0), 0.0);
        // Clamped, and no time is no busy.
        let idle_all = CpuSample::from_line(
            "cpu0 1000 0 500 2700 300 0 10 0 0 0",
            t0 + Duration::from_secs(6),
        )
        .unwrap();
        assert_eq!(a.busy_pct_at(&idle_all, 100.0), 0.0);
        assert_eq!(a.busy_pct_at(&a, 100.0), 0.0);
        // Malformed lines are errors, not zeros.
        assert!(CpuSample::from_line("cpu0 1 2 3", t0).is_err());
        assert!(CpuSample::from_line("cpu0 1 2 x 4 5", t0).is_err());
    }
}

/// libsrtp2 FFI, for interop tests and comparison benchmarks only.
#[allow(unsafe_code)]
pub mod libsrtp;

/// rtpengine ng-protocol client, for the same-run comparison with rtpengine.
pub mod ng;
