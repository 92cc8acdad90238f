//! The forecast backtest: synthetic weekly series shaped like a service's demand (a level, a
//! trend, a yearly season, the Spring Festival and National Day weeks, noise). The last 8
//! weeks of each are kept from the forecaster, which chooses its method on the weeks before
//! them as the dashboard does; its forecast of the kept weeks is scored by MASE against
//! seasonal naive's, so the choice is not scored on the weeks it was made on.

use std::time::Instant;

use insight::forecast::{self, HORIZON, Method, SEASON};

/// A small deterministic generator (xorshift64*): the same series every run.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next()
    }
}

/// One series of `weeks` weeks.
fn series(s: &mut Stream, weeks: usize) -> Vec<f64> {
    let level = s.between(30.0, 500.0);
    let trend = s.between(-0.003, 0.006);
    let amplitude = s.between(0.05, 0.35);
    let phase = s.between(0.0, std::f64::consts::TAU);
    let noise = s.between(0.03, 0.15);
    (0..weeks)
        .map(|t| {
            let week_of_year = t % SEASON;
            let season = 1.0 + amplitude * (std::f64::consts::TAU * week_of_year as f64 / SEASON as f64 + phase).sin();
            // The Spring Festival (about weeks 5–6) and National Day (week 40) close the halls.
            let holiday = match week_of_year {
                5 | 6 => 0.45,
                40 => 0.6,
                _ => 1.0,
            };
            let mean = level * (1.0 + trend).powi(i32::try_from(t).unwrap_or(0)) * season * holiday;
            (mean * (1.0 + noise * (s.next() * 2.0 - 1.0))).round().max(0.0)
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    match values.len() % 2 {
        _ if values.is_empty() => None,
        1 => values.get(mid).copied(),
        _ => Some((values.get(mid - 1)? + values.get(mid)?) / 2.0),
    }
}

pub fn forecast_bench(count: usize) -> anyhow::Result<()> {
    let mut stream = Stream(0x7107_ba17_2026_0001);
    let weeks = 2 * SEASON + 30;
    let started = Instant::now();
    let (mut chosen, mut naive, mut ets) = (Vec::with_capacity(count), Vec::with_capacity(count), 0usize);
    for _ in 0..count {
        let all = series(&mut stream, weeks + HORIZON);
        let (history, kept) = all.split_at(weeks);
        let f = forecast::forecast(history).map_err(|e| anyhow::anyhow!(e))?;
        let points: Vec<f64> = f.weeks.iter().map(|w| w.value).collect();
        if let Some(scale) = forecast::mase_scale(history, f.season) {
            chosen.push(forecast::mae(kept, &points) / scale);
            naive.push(forecast::mae(kept, &forecast::seasonal_naive(history, f.season, HORIZON)) / scale);
        }
        ets += usize::from(f.method == Method::Ets);
    }
    let per_series = started.elapsed().as_secs_f64() / count.max(1) as f64;
    let better = chosen.iter().zip(&naive).filter(|(c, n)| c < n).count();
    let (median_chosen, median_naive) = (median(chosen.clone()), median(naive));
    let fmt = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.3}"));
    println!();
    println!(
        "| forecast backtest ({count} series of {weeks} weeks, then {HORIZON} kept out) | value | reference (same run) | ratio | target |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| median MASE of the chosen method | {} | {} (seasonal naive) | {} | < 1 |",
        fmt(median_chosen),
        fmt(median_naive),
        match (median_chosen, median_naive) {
            (Some(c), Some(n)) if n > 0.0 => format!("{:.2}", c / n),
            _ => "—".into(),
        }
    );
    println!("| series where the chosen method beat seasonal naive | {better} of {} | — | — | — |", chosen.len());
    println!("| series forecast by exponential smoothing | {ets} of {count} | — | — | — |");
    println!("| time to choose, backtest and forecast one series | {:.1} ms | — | — | — |", per_series * 1e3);
    Ok(())
}
