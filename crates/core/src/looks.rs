//! Repeated looks: the experiment loop judges its evidence after every iteration, so the
//! error budget `1 − c` is split across the planned looks (Bonferroni).

/// How the loop's confidence is shared across its looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Looks {
    /// Looks planned (iterations of the loop).
    pub planned: u32,
    /// The level the whole loop holds.
    pub confidence: f64,
}

impl Looks {
    /// `planned` looks (at least one) holding `confidence` over the whole loop.
    pub fn new(confidence: f64, planned: u32) -> Self {
        Self {
            planned: planned.max(1),
            confidence,
        }
    }

    /// The level of each look's bounds: `1 − (1 − c) / K`.
    pub fn per_look(&self) -> f64 {
        1.0 - (1.0 - self.confidence) / f64::from(self.planned)
    }

    /// `bonferroni`, or `single` for one look.
    pub fn method(&self) -> &'static str {
        if self.planned == 1 {
            "single"
        } else {
            "bonferroni"
        }
    }
}
