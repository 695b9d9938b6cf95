//! The sentence-transformers files around a transformer checkpoint: `modules.json`, the pooling
//! config, `sentence_bert_config.json` and the prompts in `config_sentence_transformers.json`.

use super::source::{read_json, FileSource};
use crate::error::{Error, Result};
use crate::pooling::Pooling;

/// What a model directory's own sentence-transformers files say; `None` where they are silent.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct StSettings {
    /// Folder of the Transformer module inside the model (empty for the usual flat layout).
    pub transformer_dir: String,
    pub pooling: Option<Pooling>,
    pub normalize: Option<bool>,
    /// `max_seq_length` of `sentence_bert_config.json`.
    pub max_length: Option<usize>,
    /// `model_max_length` of `tokenizer_config.json`, where sentence-transformers 6 keeps the
    /// max sequence length and older versions fall back to it.
    pub tokenizer_max_length: Option<usize>,
    pub query_prompt: Option<String>,
    pub document_prompt: Option<String>,
}

/// Prompt names that `encode_document` tries, in sentence-transformers' order.
const DOCUMENT_PROMPT_NAMES: &[&str] = &["document", "passage", "corpus"];

impl StSettings {
    pub(crate) fn read(source: &dyn FileSource) -> Result<Self> {
        let mut settings = Self::default();
        if let Some(path) = source.get("modules.json")? {
            let modules = read_json(&path)?;
            let modules = modules.as_array().ok_or_else(|| Error::Malformed {
                path: path.clone(),
                reason: "expected a list of modules".into(),
            })?;
            settings.normalize = Some(false);
            for module in modules {
                let kind = module
                    .get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or_default();
                let dir = module
                    .get("path")
                    .and_then(|p| p.as_str())
                    .unwrap_or_default();
                match kind.rsplit('.').next().unwrap_or_default() {
                    "Transformer" => settings.transformer_dir = dir.trim_end_matches('/').to_string(),
                    "Pooling" => {
                        let config_path = source.require(&join(dir, "config.json"))?;
                        let pooling = Pooling::from_sentence_transformers(&read_json(&config_path)?)
                            .map_err(|reason| Error::Malformed { path: config_path, reason })?;
                        settings.pooling = Some(pooling);
                    }
                    "Normalize" => settings.normalize = Some(true),
                    _ => {
                        return Err(Error::Malformed {
                            path,
                            reason: format!("module `{kind}` is not supported (rembed runs Transformer, Pooling and Normalize)"),
                        })
                    }
                }
            }
        }
        let bert_config = join(&settings.transformer_dir, "sentence_bert_config.json");
        if let Some(path) = source.get(&bert_config)? {
            settings.max_length = read_json(&path)?
                .get("max_seq_length")
                .and_then(|v| v.as_u64())
                .map(|v| v as usize);
        }
        if let Some(path) = source.get(&join(&settings.transformer_dir, "tokenizer_config.json"))? {
            // Tokenizers without a limit store a huge sentinel (int(1e30)); ignore it.
            settings.tokenizer_max_length = read_json(&path)?
                .get("model_max_length")
                .and_then(|v| v.as_u64())
                .filter(|&v| v < 1 << 24)
                .map(|v| v as usize);
        }
        if let Some(path) = source.get("config_sentence_transformers.json")? {
            let config = read_json(&path)?;
            let prompts = config.get("prompts").and_then(|p| p.as_object());
            let prompt = |name: &str| {
                prompts
                    .and_then(|p| p.get(name))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            settings.query_prompt = prompt("query");
            settings.document_prompt = DOCUMENT_PROMPT_NAMES.iter().find_map(|name| prompt(name));
        }
        Ok(settings)
    }

    /// Path of a file of the Transformer module (config, tokenizer, weights).
    pub(crate) fn transformer_file(&self, file: &str) -> String {
        join(&self.transformer_dir, file)
    }
}

fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::source::LocalDir;

    #[test]
    fn reads_the_standard_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
               {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
               {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        std::fs::create_dir(p.join("1_Pooling")).unwrap();
        std::fs::write(
            p.join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": true}"#,
        )
        .unwrap();
        std::fs::write(
            p.join("sentence_bert_config.json"),
            r#"{"max_seq_length": 256}"#,
        )
        .unwrap();
        std::fs::write(
            p.join("config_sentence_transformers.json"),
            r#"{"prompts": {"query": "q: ", "passage": "p: "}, "default_prompt_name": null}"#,
        )
        .unwrap();
        let s = StSettings::read(&LocalDir(p.to_path_buf())).unwrap();
        assert_eq!(s.pooling, Some(Pooling::Cls));
        assert_eq!(s.normalize, Some(true));
        assert_eq!(s.max_length, Some(256));
        assert_eq!(s.query_prompt.as_deref(), Some("q: "));
        assert_eq!(s.document_prompt.as_deref(), Some("p: "));
    }

    #[test]
    fn refuses_modules_it_cannot_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
        )
        .unwrap();
        let err = StSettings::read(&LocalDir(dir.path().to_path_buf())).unwrap_err();
        assert!(
            err.to_string().contains("Dense") && err.to_string().contains("modules.json"),
            "{err}"
        );
    }

    #[test]
    fn plain_checkpoint_says_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            StSettings::read(&LocalDir(dir.path().to_path_buf())).unwrap(),
            StSettings::default()
        );
    }
}
