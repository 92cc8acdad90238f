//! Forecasts of weekly volumes (applications, a service's applications, 12345 requests) 4–8
//! weeks ahead with prediction intervals. Each series gets the method that did best on its
//! own held-out weeks: seasonal naive (the same week a year before, or last week's value
//! without a year of history) or exponential smoothing (AutoETS; over two years of history,
//! MSTL takes the yearly season out first and ETS forecasts the rest). MASE on the held-out
//! window, against the seasonal naive forecast's in-sample error, says how good it was:
//! below 1 beats seasonal naive.

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;
use serde::Serialize;

/// Weeks in a season (a year).
pub const SEASON: usize = 52;
/// Weeks forecast, and weeks held out to choose the method.
pub const HORIZON: usize = 8;
/// The prediction intervals' level.
pub const LEVEL: f64 = 0.8;
/// The fewest weeks a forecast is made from: the held-out window three times over.
pub const MIN_WEEKS: usize = 3 * HORIZON;
/// The 90th percentile of the standard normal, for an 80 % interval.
const Z80: f64 = 1.281_551_565_5;

/// How a series was forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema, strum::IntoStaticStr, strum::VariantArray)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Method {
    /// The same week a season before (or the last week, with less than a season).
    SeasonalNaive,
    /// Exponential smoothing (AutoETS), after MSTL removed the yearly season when there
    /// were two years to learn it from.
    Ets,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One week ahead.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Ahead {
    pub value: f64,
    /// The 80 % prediction interval.
    pub lower: f64,
    pub upper: f64,
}

/// A series' forecast and how its method did on the held-out weeks.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SeriesForecast {
    pub method: Method,
    /// The season the method and the scale used: 52 weeks, or 1 without two years.
    pub season: usize,
    /// MASE of the chosen method on the held-out weeks; none when the history has no
    /// variation to scale by.
    pub mase: Option<f64>,
    /// MASE of seasonal naive on the same weeks (1 or near it, by construction of the scale).
    pub naive_mase: Option<f64>,
    pub weeks: Vec<Ahead>,
}

/// Why a series could not be forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("{0} weeks of history; a forecast needs {MIN_WEEKS}")]
    TooShort(usize),
    #[error("the model could not be fitted: {0}")]
    Model(String),
}

/// The forecast of `h` weeks by repeating the season (`m` weeks) before.
pub fn seasonal_naive(history: &[f64], m: usize, h: usize) -> Vec<f64> {
    let n = history.len();
    let base = n.saturating_sub(m.min(n));
    (0..h).map(|k| history.get(base + k % m.max(1)).or(history.last()).copied().unwrap_or(0.0)).collect()
}

/// The in-sample errors of seasonal naive (`y_t − y_{t−m}`).
fn seasonal_differences(history: &[f64], m: usize) -> Vec<f64> {
    history.iter().skip(m).zip(history).map(|(now, before)| now - before).collect()
}

/// The mean absolute seasonal difference: what MASE divides by.
pub fn mase_scale(history: &[f64], m: usize) -> Option<f64> {
    let diffs = seasonal_differences(history, m);
    let scale = diffs.iter().map(|d| d.abs()).sum::<f64>() / diffs.len().max(1) as f64;
    (scale > 0.0).then_some(scale)
}

/// The mean absolute error of a forecast.
pub fn mae(actual: &[f64], forecast: &[f64]) -> f64 {
    actual.iter().zip(forecast).map(|(a, f)| (a - f).abs()).sum::<f64>() / actual.len().max(1) as f64
}

/// Exponential smoothing of `history`, `h` weeks ahead, with intervals.
fn ets(history: &[f64], m: usize, h: usize) -> Result<Vec<Ahead>, ForecastError> {
    let model = |e: String| ForecastError::Model(e);
    let forecast = if m > 1 {
        let mstl = MSTLModel::new(vec![m], AutoETS::non_seasonal().into_trend_model());
        let fitted = mstl.fit(history).map_err(|e| model(e.to_string()))?;
        fitted.predict(h, LEVEL).map_err(|e| model(e.to_string()))?
    } else {
        let fitted = AutoETS::non_seasonal().fit(history).map_err(|e| model(e.to_string()))?;
        fitted.predict(h, LEVEL).map_err(|e| model(e.to_string()))?
    };
    let intervals = forecast.intervals.ok_or_else(|| model("no prediction intervals".into()))?;
    Ok(forecast
        .point
        .iter()
        .zip(intervals.lower.iter().zip(&intervals.upper))
        .map(|(v, (lo, hi))| Ahead { value: v.max(0.0), lower: lo.max(0.0), upper: hi.max(0.0) })
        .collect())
}

/// Seasonal naive with intervals that widen with each season ahead (σ·√(⌊k/m⌋ + 1)).
fn naive_with_intervals(history: &[f64], m: usize, h: usize) -> Vec<Ahead> {
    let diffs = seasonal_differences(history, m);
    let mean = diffs.iter().sum::<f64>() / diffs.len().max(1) as f64;
    let sd =
        (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / diffs.len().max(2).saturating_sub(1) as f64).sqrt();
    seasonal_naive(history, m, h)
        .into_iter()
        .enumerate()
        .map(|(k, v)| {
            let half = Z80 * sd * ((k / m.max(1)) as f64 + 1.0).sqrt();
            Ahead { value: v, lower: (v - half).max(0.0), upper: v + half }
        })
        .collect()
}

fn points(weeks: &[Ahead]) -> Vec<f64> {
    weeks.iter().map(|a| a.value).collect()
}

/// Forecasts `HORIZON` weeks after a weekly history (oldest first): both methods are tried
/// on the history without its last `HORIZON` weeks, the better on those weeks is refitted on
/// all of it.
pub fn forecast(history: &[f64]) -> Result<SeriesForecast, ForecastError> {
    let n = history.len();
    if n < MIN_WEEKS {
        return Err(ForecastError::TooShort(n));
    }
    let (train, test) = history.split_at(n - HORIZON);
    // The yearly season is used when the training weeks hold two of them.
    let m = if train.len() >= 2 * SEASON { SEASON } else { 1 };
    let scale = mase_scale(train, m);
    let naive = mae(test, &seasonal_naive(train, m, HORIZON));
    // A model that cannot be fitted is not chosen; seasonal naive always can be.
    let smoothed = ets(train, m, HORIZON).ok().map(|w| mae(test, &points(&w)));
    let method = match smoothed {
        Some(e) if e < naive => Method::Ets,
        _ => Method::SeasonalNaive,
    };
    let held_out = if method == Method::Ets { smoothed.unwrap_or(naive) } else { naive };
    let weeks = match method {
        Method::Ets => ets(history, m, HORIZON)?,
        Method::SeasonalNaive => naive_with_intervals(history, m, HORIZON),
    };
    Ok(SeriesForecast {
        method,
        season: m,
        mase: scale.map(|s| held_out / s),
        naive_mase: scale.map(|s| naive / s),
        weeks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weekly series with a yearly season, a trend and a deterministic wobble.
    fn seasonal(weeks: usize) -> Vec<f64> {
        (0..weeks)
            .map(|t| {
                let t = t as f64;
                let season = 30.0 * (2.0 * std::f64::consts::PI * t / SEASON as f64).sin();
                let wobble = 4.0 * ((t * 7.3).sin());
                200.0 + 0.8 * t + season + wobble
            })
            .collect()
    }

    #[test]
    fn a_short_history_is_not_forecast() {
        assert_eq!(forecast(&[3.0; 10]), Err(ForecastError::TooShort(10)));
    }

    #[test]
    fn seasonal_naive_repeats_the_season_before() {
        let h = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(seasonal_naive(&h, 3, 4), [4.0, 5.0, 6.0, 4.0]);
        assert_eq!(seasonal_naive(&h, 1, 2), [6.0, 6.0]);
    }

    #[test]
    fn with_a_trend_and_a_season_the_chosen_method_beats_seasonal_naive() {
        let history = seasonal(2 * SEASON + 30);
        let f = forecast(&history).unwrap();
        assert_eq!(f.season, SEASON);
        assert_eq!(f.weeks.len(), HORIZON);
        let (mase, naive) = (f.mase.unwrap(), f.naive_mase.unwrap());
        assert!(mase <= naive, "{f:?}");
        assert!(mase < 1.0, "the trend makes last year's weeks too low: {f:?}");
        assert!(f.weeks.iter().all(|w| w.lower <= w.value && w.value <= w.upper), "{f:?}");
    }

    #[test]
    fn a_flat_series_is_forecast_flat() {
        let f = forecast(&[50.0; 40]).unwrap();
        assert!(f.weeks.iter().all(|w| (w.value - 50.0).abs() < 1e-6), "{f:?}");
        assert_eq!(f.mase, None, "no variation to scale by");
    }
}
