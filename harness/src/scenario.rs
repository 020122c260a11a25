//! Scenario files: the model of the YAML format, its strict parser and
//! validator, and the JSON Schema generated from the same types.

mod at;
mod de;
mod error;
mod expect_keys;
mod guard;
mod layout;
mod model;
mod parse;
mod paths;
mod schema;
mod sequence;
mod validate;

pub use at::{parse_utc, At, AtError, OutOfRange, UtcError, MAX_TIME_MS, MIN_TIME_MS};
pub use de::MAX_STEPS;
pub use error::ScenarioError;
pub use expect_keys::{EventMatch, EventPattern, ProcessExpect};
pub use guard::{MAX_ALIAS_BYTES, MAX_DEPTH};
pub use layout::{Seg, YamlPath};
pub use model::{
    Decision, Expect, Position, Scenario, Step, Termination, FORMAT_VERSION, PATH_PATTERN,
    UNSETTLED_COUNTS,
};
pub use parse::{parse_scenario, parse_str, MAX_FILE_BYTES, PARALLEL_LAYOUT_BYTES};
pub use paths::{check_path, known_paths, Shape, UnknownPath};
pub use schema::{json_schema, json_schema_text, SCHEMA_URL};
pub use sequence::{AdvanceStep, RepeatStep, Repeated, Sequence, MAX_EXPANSION, SEQUENCE_KINDS};
pub use validate::{is_valid_name, name_problem, validate, Issue, MAX_NAME_LEN, MAX_RETRIES};
