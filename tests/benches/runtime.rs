//! Per-run cost of the runtime against the bare wasmtime floor.
//!
//! `cargo bench -p wasmcron-tests --bench runtime`
//!
//! For each engine configuration, measures the median wall time of one run
//! of `hello` (fresh store, instantiate, call) two ways, interleaved in
//! rounds so machine noise hits both alike:
//! - floor: bare wasmtime on the same engine and component: a store with a
//!   default WASI context, no capture, no limiter, no timeout wrapper;
//! - ours: `Runtime::run`, with capture, limits, kv and outcome mapping.
//!
//! Reports medians and the ratio ours/floor.
//!
//! Then, when the Python and JavaScript examples were built (their
//! toolchains installed, see docs/python.md), one run of `hello`,
//! `hello-py` and `hello-js` through `Runtime::run` on the default engine,
//! interleaved, with each language's median and its ratio to Rust's: what
//! the bigger runtimes cost per run (the bare floor cannot link them: a
//! JavaScript component always imports `wasi:http`).

use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmcron::plugin::Plugin;
use wasmcron::runtime::{EngineOptions, Limits, RunRequest, Runtime, RuntimeConfig, WitRunCause};
use wasmcron::store::MemoryKv;
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The bare floor: wasmtime's own APIs, the host imports as no-op closures.
struct Floor {
    engine: Engine,
    pre: wasmtime::component::InstancePre<Bare>,
}

impl Floor {
    fn new(engine: &Engine, path: &str) -> wasmtime::Result<Self> {
        let component = Component::from_file(engine, path)?;
        let mut linker: Linker<Bare> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let mut log = linker.instance("wasmcron:plugin/log@0.2.0")?;
        log.func_new("log", |_, _, _, _| Ok(()))?;
        linker.instance("wasmcron:plugin/types@0.2.0")?;
        let pre = linker.instantiate_pre(&component)?;
        Ok(Self {
            engine: engine.clone(),
            pre,
        })
    }

    async fn run_once(&self) -> wasmtime::Result<()> {
        let mut store = Store::new(
            &self.engine,
            Bare {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        store.set_fuel(u64::MAX)?;
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let idx = instance
            .get_export_index(&mut store, None, "wasmcron:plugin/runner@0.2.0")
            .and_then(|i| instance.get_export_index(&mut store, Some(&i), "run"))
            .ok_or_else(|| wasmtime::Error::msg("no run export"))?;
        let func = instance
            .get_func(&mut store, idx)
            .ok_or_else(|| wasmtime::Error::msg("run is not a func"))?;
        let ts = || {
            Val::Record(vec![
                ("seconds".into(), Val::S64(0)),
                ("nanoseconds".into(), Val::U32(0)),
            ])
        };
        let ctx = Val::Record(vec![
            ("job-id".into(), Val::String("bench".into())),
            ("run-id".into(), Val::String("bench-run".into())),
            ("scheduled-at".into(), ts()),
            ("fired-at".into(), ts()),
            ("attempt".into(), Val::U32(1)),
            ("args".into(), Val::String("{}".into())),
            // WIT 0.2.0's fields: the example plugins build with the SDK,
            // which targets it.
            ("cause".into(), Val::Enum("schedule".into())),
            ("parent".into(), Val::Option(None)),
        ]);
        let mut results = [Val::Bool(false)];
        func.call_async(&mut store, &[ctx], &mut results).await?;
        Ok(())
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn measure(label: &str, engine: EngineOptions, path: &str) -> wasmtime::Result<()> {
    let config = RuntimeConfig {
        engine,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config, Arc::new(MemoryKv::default()))?;
    let plugin = Plugin::load_file(&runtime, std::path::Path::new(path))
        .map_err(|e| wasmtime::Error::msg(e.to_string()))?;
    let floor = Floor::new(runtime.engine(), path)?;
    let request = RunRequest {
        job_id: "bench".into(),
        run_id: "bench-run".into(),
        scheduled_at: chrono::Utc::now(),
        attempt: 1,
        args: "{}".into(),
        cause: WitRunCause::Manual,
        parent: None,
        limits: Limits::default(),
        grants: Arc::default(),
    };
    // Warm up both paths (page faults, pool slots, lazy init).
    for _ in 0..200 {
        floor.run_once().await?;
        let _ = runtime.run(&plugin, &request).await;
    }
    let rounds = 20;
    let per_round = 100;
    let mut floor_t = Vec::with_capacity(rounds * per_round);
    let mut ours_t = Vec::with_capacity(rounds * per_round);
    for _ in 0..rounds {
        for _ in 0..per_round {
            let t = Instant::now();
            floor.run_once().await?;
            floor_t.push(t.elapsed());
        }
        for _ in 0..per_round {
            let t = Instant::now();
            let report = runtime.run(&plugin, &request).await;
            ours_t.push(t.elapsed());
            if !report.outcome.is_success() {
                return Err(wasmtime::Error::msg(format!(
                    "hello failed: {:?}",
                    report.outcome
                )));
            }
        }
    }
    let f = median(&mut floor_t);
    let o = median(&mut ours_t);
    println!(
        "{label:<28} allocator={:<9} floor median {:>7.1} µs   ours median {:>7.1} µs   ratio {:.2}x   (n={} each)",
        format!("{:?}", runtime.allocator()),
        micros(f),
        micros(o),
        o.as_secs_f64() / f.as_secs_f64(),
        floor_t.len()
    );
    Ok(())
}

/// One run of each language's hello through `Runtime::run`, interleaved in
/// rounds; medians and the ratio to Rust's `hello`.
async fn languages(engine: EngineOptions, plugins: &[(&str, &str)]) -> wasmtime::Result<()> {
    let config = RuntimeConfig {
        engine,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config, Arc::new(MemoryKv::default()))?;
    let mut loaded = Vec::new();
    for (name, path) in plugins {
        let t = Instant::now();
        let plugin = Plugin::load_file(&runtime, std::path::Path::new(path))
            .map_err(|e| wasmtime::Error::msg(format!("{name}: {e}")))?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{name:<9} {:>5.1} MB, compiled in {:>6.2} s",
            size as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        loaded.push((*name, plugin, Vec::new(), 0u64));
    }
    let request = RunRequest {
        job_id: "bench".into(),
        run_id: "bench-run".into(),
        scheduled_at: chrono::Utc::now(),
        attempt: 1,
        args: r#"{"name": "bench"}"#.into(),
        cause: WitRunCause::Manual,
        parent: None,
        limits: Limits::default(),
        grants: Arc::default(),
    };
    let (rounds, per_round) = (10, 20);
    for (name, plugin, _, _) in &loaded {
        for _ in 0..per_round {
            let report = runtime.run(plugin, &request).await;
            if !report.outcome.is_success() {
                return Err(wasmtime::Error::msg(format!(
                    "{name} failed: {:?}",
                    report.outcome
                )));
            }
        }
    }
    for _ in 0..rounds {
        for (_, plugin, times, fuel) in &mut loaded {
            for _ in 0..per_round {
                let t = Instant::now();
                let report = runtime.run(&*plugin, &request).await;
                times.push(t.elapsed());
                *fuel = report.fuel_consumed;
            }
        }
    }
    let mut base = None;
    for (name, _, times, fuel) in &mut loaded {
        let m = median(times);
        let base = *base.get_or_insert(m);
        println!(
            "{name:<9} ours median {:>9.1} µs   {:>6.1}x hello   fuel per run {fuel:>10}   (n={})",
            micros(m),
            m.as_secs_f64() / base.as_secs_f64(),
            times.len()
        );
    }
    Ok(())
}

fn main() -> wasmtime::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too. Run
    // only when benchmarking so `cargo test` stays quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("runtime bench: skipped (run with `cargo bench`)");
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let hello = wasmcron_tests::plugins::HELLO;
    println!(
        "one run of plugins/hello: fresh store + instantiate + call (median); pagemap_scan available: {}",
        wasmcron::runtime::pagemap_scan_available()
    );
    let default = EngineOptions::default();
    rt.block_on(async {
        measure("pooling+resident+pagemap", default.clone(), hello).await?;
        let no_scan = EngineOptions {
            pagemap_scan: false,
            ..default.clone()
        };
        measure("pooling+resident", no_scan, hello).await?;
        let plain = EngineOptions {
            pagemap_scan: false,
            keep_resident: 0,
            ..default.clone()
        };
        measure("pooling, nothing resident", plain, hello).await?;
        let on_demand = EngineOptions {
            pooling: false,
            ..default.clone()
        };
        measure("on-demand (fallback)", on_demand, hello).await?;
        let mut plugins = vec![("hello", hello)];
        plugins.extend(wasmcron_tests::plugins::HELLO_PY.map(|p| ("hello-py", p)));
        plugins.extend(wasmcron_tests::plugins::HELLO_JS.map(|p| ("hello-js", p)));
        if plugins.len() == 1 {
            println!(
                "languages: hello-py and hello-js were not built ({}); see docs/python.md",
                wasmcron_tests::plugins::POLYGLOT_NOTES.join("; ")
            );
            return Ok(());
        }
        println!("\none run per language, default engine (median; interleaved rounds):");
        languages(default, &plugins).await
    })
}
