//! Secrets: parameters whose values no output of the engine shows.
//!
//! A run's record lists its secrets by name, with [`MASK`] for their values; the values
//! are in [`Table::Secrets`], sealed with the store's key ([`Sealer`]), from the batch that
//! creates the run until the one that ends it ([`forget`], through `records::put_run`).
//! The driver puts them back into the run's parameters in memory, where steps see them
//! (a shell step through its environment, a host step through its context), and masks
//! them in everything a step gives back before it is stored or shown: outputs, errors and
//! the tail of its log ([`Mask`], the one redaction rule).

use super::records::{decode, encode, RunRecord};
use crate::model::MASK;
use crate::steps::StepOutcome;
use crate::store::{Batch, Sealer, Store, StoreError, Table};
use indexmap::IndexMap;
use serde_json::Value;

/// Takes the values of the secrets `names` out of `run.params` into `batch`, sealed; the
/// record keeps their names, and [`MASK`] in place of their values.
pub(crate) fn keep(
    sealer: &Sealer,
    batch: &mut Batch,
    run: &mut RunRecord,
    names: Vec<String>,
) -> Result<(), StoreError> {
    let mut values = IndexMap::new();
    for name in &names {
        if let Some(value) = run.params.get_mut(name) {
            values.insert(name.clone(), std::mem::replace(value, Value::from(MASK)));
        }
    }
    if values.is_empty() {
        return Ok(());
    }
    batch.put(Table::Secrets, run.id.as_bytes(), sealer.seal(&encode(&values))?);
    run.secrets = values.into_keys().collect();
    Ok(())
}

/// The run's parameters with its secrets' values back in place of [`MASK`].
pub(crate) fn restore(
    store: &dyn Store,
    sealer: &Sealer,
    run: &RunRecord,
) -> Result<IndexMap<String, Value>, StoreError> {
    let mut params = run.params.clone();
    if run.secrets.is_empty() {
        return Ok(params);
    }
    let what = || format!("secrets of run {}", run.id);
    let sealed = store
        .get(Table::Secrets, run.id.as_bytes())?
        .ok_or_else(|| StoreError::Corrupt { what: what(), message: "missing".into() })?;
    let plain = sealer.unseal(&sealed).ok_or_else(|| StoreError::Corrupt {
        what: what(),
        message: "they do not unseal with the store's key (secret.key)".into(),
    })?;
    let values: IndexMap<String, Value> = decode(what, &plain)?;
    params.extend(values);
    Ok(params)
}

/// Drops the secrets of a run that has ended, in the batch that ends it.
pub(crate) fn forget(batch: &mut Batch, run: &RunRecord) {
    if run.status.is_terminal() && !run.secrets.is_empty() {
        batch.delete(Table::Secrets, run.id.as_bytes());
    }
}

/// The values to hide, and how: each occurrence becomes [`MASK`].
#[derive(Debug, Default, Clone)]
pub(crate) struct Mask {
    /// Longest first, so that a secret holding another is masked whole.
    values: Vec<String>,
}

impl Mask {
    /// This mask and the values of `secrets` of `params`. A multi-line value is also
    /// masked line by line, as a step may print one line of it.
    pub(crate) fn with(&self, params: &IndexMap<String, Value>, secrets: &[String]) -> Mask {
        let mut values = self.values.clone();
        for value in secrets.iter().filter_map(|name| params.get(name)) {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            values.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
            values.push(text);
        }
        values.retain(|v| !v.is_empty());
        values.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Mask { values }
    }

    /// A mask of `values`, as [`values`](Mask::values) gave them.
    pub(crate) fn of(values: Vec<String>) -> Mask {
        Mask { values }
    }

    /// The values it hides, longest first.
    pub(crate) fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether there is nothing to hide.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether `text` holds a secret.
    pub(crate) fn finds(&self, text: &str) -> bool {
        self.values.iter().any(|v| text.contains(v.as_str()))
    }

    /// `text` with every secret in it masked.
    pub(crate) fn text(&self, text: String) -> String {
        if !self.finds(&text) {
            return text;
        }
        self.values.iter().fold(text, |t, v| t.replace(v.as_str(), MASK))
    }

    /// `value` with every secret in its strings (and keys) masked.
    pub(crate) fn value(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (self.text(k), self.value(v))).collect())
            }
            Value::Number(n) if self.finds(&n.to_string()) => Value::from(MASK),
            other => other,
        }
    }

    /// What an attempt gave back, with every secret masked: before it is stored or shown.
    pub(crate) fn outcome(&self, outcome: StepOutcome) -> StepOutcome {
        if self.is_empty() {
            return outcome;
        }
        StepOutcome {
            result: match outcome.result {
                Ok(outputs) => Ok(outputs.into_iter().map(|(k, v)| (k, self.value(v))).collect()),
                Err(error) => Err(self.text(error)),
            },
            log_tail: outcome.log_tail.map(|t| self.text(t)),
            class: outcome.class,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mask(values: &[(&str, Value)]) -> Mask {
        let params: IndexMap<String, Value> =
            values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let names: Vec<String> = params.keys().cloned().collect();
        Mask::default().with(&params, &names)
    }

    #[test]
    fn every_occurrence_of_a_secret_is_masked() {
        let m =
            mask(&[("token", json!("s3cr3t")), ("key", json!("s3cr3t-long")), ("n", json!(4242))]);
        assert_eq!(m.text("a s3cr3t-long b s3cr3t c".into()), "a *** b *** c");
        assert_eq!(m.text("nothing here".into()), "nothing here");
        assert_eq!(
            m.value(json!({"x": ["s3cr3t", 1], "s3cr3t": 4242, "y": "pin 4242"})),
            json!({"x": ["***", 1], "***": "***", "y": "pin ***"})
        );
        let pem = mask(&[("pem", json!("-----BEGIN-----\nAAAAbase64\n-----END-----"))]);
        assert_eq!(pem.text("line: AAAAbase64".into()), "line: ***");
        assert!(mask(&[("empty", json!(""))]).is_empty());
    }

    #[test]
    fn an_outcome_is_masked_whole() {
        let m = mask(&[("token", json!("s3cr3t"))]);
        let outcome = StepOutcome {
            log_tail: Some("token=s3cr3t".into()),
            ..StepOutcome::failure("login with s3cr3t refused")
        };
        let masked = m.outcome(outcome);
        assert_eq!(masked.result, Err("login with *** refused".into()));
        assert_eq!(masked.log_tail.as_deref(), Some("token=***"));
    }
}
