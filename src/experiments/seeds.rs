//! Seeds as pipeline.toml writes them: a list, or a range.

use serde::{Deserialize, Serialize};

/// Seeds: a TOML list `[0, 1, 2]`, or a range string `"0..100"` (end exclusive).
#[derive(Clone, Debug, PartialEq)]
pub struct Seeds(pub Vec<u64>);

impl std::ops::Deref for Seeds {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Seeds {
    type Item = &'a u64;
    type IntoIter = std::slice::Iter<'a, u64>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<u64> for Seeds {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Seeds {
        Seeds(iter.into_iter().collect())
    }
}

impl Serialize for Seeds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Seeds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seeds, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<u64>),
            Range(String),
        }
        match Form::deserialize(d)? {
            Form::List(list) => Ok(Seeds(list)),
            Form::Range(text) => {
                let parsed = text
                    .split_once("..")
                    .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
                match parsed {
                    Some((a, b)) if a < b => Ok(Seeds((a..b).collect())),
                    _ => Err(serde::de::Error::custom(format!(
                        "seeds: expected a list or a range \"FROM..TO\", got \"{text}\""
                    ))),
                }
            }
        }
    }
}
