//! The JSON Schema of the scenario format, generated from the types the
//! parser deserializes into, for editor completion and validation.

use schemars::generate::SchemaSettings;
use schemars::Schema;

use super::de::RawScenario;
use super::validate::MAX_RETRIES;

/// Where the schema is published; `rehearse new` points editors at it.
pub const SCHEMA_URL: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/schema/scenario-v1.json");

/// The scenario format's JSON Schema (draft-07, which yaml-language-server reads).
pub fn json_schema() -> Schema {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawScenario>();
    schema.insert("$id".to_owned(), SCHEMA_URL.into());
    schema.insert(
        "title".to_owned(),
        "rehearse scenario, format version 1".into(),
    );
    // The retry limit is the harness's, not the runtime's, so it is added
    // here rather than on the runtime's type.
    if let Some(retries) = schema.pointer_mut("/definitions/Constraints/properties/max_retries") {
        if let Some(retries) = retries.as_object_mut() {
            retries.insert("maximum".to_owned(), MAX_RETRIES.into());
        }
    }
    schema
}

/// The schema as pretty JSON with a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema())
        .unwrap_or_else(|error| panic!("the JSON Schema failed to serialize: {error}"));
    text.push('\n');
    text
}
