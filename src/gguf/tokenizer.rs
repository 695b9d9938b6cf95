//! The tokenizer rebuilt from a GGUF file's `tokenizer.ggml.*` metadata, as the
//! `tokenizer.json` the model was converted from would load it:
//!
//! - `gpt2` (byte-level BPE; Qwen3): vocabulary and merges as written, NFC as Qwen's tokenizers
//!   normalize, the pre-tokenizer `tokenizer.ggml.pre` names (`qwen2`: Qwen2's split regex;
//!   `gpt-2`/`default`: GPT-2's), bos/eos added where `add_bos_token`/`add_eos_token` say so.
//! - `bert` (WordPiece; nomic-bert): llama.cpp stores word starts with a `▁` and continuations
//!   bare, so `##` is put back; lower-casing BERT normalization and pre-tokenization (what
//!   llama.cpp's WordPiece does); `[CLS] $A [SEP]`.
//!
//! Control tokens become special added tokens, so a literal `<|endoftext|>` in a text is that
//! token, as with `tokenizer.json`. Other models (SentencePiece `llama`, unigram `t5` as
//! bge-m3's GGUF has it, with a precompiled normalizer) are refused: their rebuilding has not
//! been checked against a `tokenizer.json`, and a tokenizer that is slightly off gives other ids
//! without any error.

use serde_json::{json, Value as Json};
use tokenizers::Tokenizer;

use super::GgufFile;
use crate::error::{Error, Result};

/// Qwen2's pre-tokenizer pattern (its `tokenizer.json`; llama.cpp's `qwen2`).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's token types.
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// The marker llama.cpp puts before BERT word starts.
const PHANTOM_SPACE: char = '\u{2581}';

struct Vocabulary<'a> {
    file: &'a GgufFile,
    model: String,
    tokens: Vec<String>,
    types: Vec<i64>,
}

impl Vocabulary<'_> {
    fn failed(&self, reason: impl Into<String>) -> Error {
        Error::Tokenizer {
            model: self.model.clone(),
            reason: reason.into(),
        }
    }

    fn id(&self, key: &str) -> Option<u32> {
        self.file
            .value(&format!("tokenizer.ggml.{key}"))
            .and_then(|v| v.to_u32().ok())
            .filter(|&id| (id as usize) < self.tokens.len())
    }

    fn flag(&self, key: &str) -> Option<bool> {
        self.file
            .value(&format!("tokenizer.ggml.{key}"))
            .and_then(|v| v.to_bool().ok())
    }

    /// Control and user-defined tokens, matched in the raw text before anything else.
    fn added_tokens(&self) -> Json {
        let added: Vec<Json> = self
            .tokens
            .iter()
            .zip(&self.types)
            .enumerate()
            .filter(|(_, (_, &t))| t == CONTROL || t == USER_DEFINED)
            .map(|(id, (token, &t))| {
                json!({"id": id, "content": token, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": t == CONTROL})
            })
            .collect();
        Json::Array(added)
    }

    /// `start $A end`, where either may be absent.
    fn template(&self, start: Option<u32>, end: Option<u32>) -> Json {
        let piece =
            |id: u32| json!({"SpecialToken": {"id": self.tokens[id as usize], "type_id": 0}});
        let mut single = Vec::new();
        single.extend(start.map(piece));
        single.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
        single.extend(end.map(piece));
        let mut pair = single.clone();
        pair.push(json!({"Sequence": {"id": "B", "type_id": 1}}));
        pair.extend(end.map(piece));
        let special: serde_json::Map<String, Json> = start
            .into_iter()
            .chain(end)
            .map(|id| {
                let token = &self.tokens[id as usize];
                (
                    token.clone(),
                    json!({"id": token, "ids": [id], "tokens": [token]}),
                )
            })
            .collect();
        json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special})
    }

    fn bpe(&self) -> Result<Json> {
        let pre = self
            .file
            .value("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map_or("default", String::as_str);
        let pre_tokenizer = match pre {
            "qwen2" => json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
            ]}),
            "gpt-2" | "default" => {
                json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true})
            }
            other => {
                return Err(self.failed(format!(
                    "pre-tokenizer `{other}` is not supported (supported: qwen2, gpt-2)"
                )))
            }
        };
        let merges = self
            .file
            .value("tokenizer.ggml.merges")
            .and_then(|v| v.to_vec().ok())
            .ok_or_else(|| self.failed("no `tokenizer.ggml.merges`"))?
            .iter()
            .map(|m| {
                let merge = m.to_string().map_err(|e| self.failed(e.to_string()))?;
                match merge.split(' ').collect::<Vec<_>>()[..] {
                    [a, b] => Ok(json!([a, b])),
                    _ => Err(self.failed(format!("merge `{merge}` is not two tokens"))),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: serde_json::Map<String, Json> = self
            .tokens
            .iter()
            .enumerate()
            .map(|(id, t)| (t.clone(), json!(id)))
            .collect();
        let start = self
            .flag("add_bos_token")
            .unwrap_or(false)
            .then(|| self.id("bos_token_id"))
            .flatten();
        let end = self
            .flag("add_eos_token")
            .unwrap_or(false)
            .then(|| self.id("eos_token_id"))
            .flatten();
        Ok(json!({
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": pre_tokenizer,
            "post_processor": self.template(start, end),
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "ignore_merges": false, "vocab": vocab, "merges": merges},
        }))
    }

    fn wordpiece(&self) -> Result<Json> {
        let vocab: serde_json::Map<String, Json> = self
            .tokens
            .iter()
            .enumerate()
            .map(|(id, t)| (wordpiece_token(t), json!(id)))
            .collect();
        let unk = self
            .id("unknown_token_id")
            .map(|id| wordpiece_token(&self.tokens[id as usize]))
            .ok_or_else(|| self.failed("no `tokenizer.ggml.unknown_token_id`"))?;
        let cls = self.id("bos_token_id").or_else(|| self.id("cls_token_id"));
        let sep = if self.flag("add_sep_token") == Some(true) {
            self.id("seperator_token_id")
        } else {
            self.id("eos_token_id")
                .or_else(|| self.id("seperator_token_id"))
        };
        let start = (self.flag("add_bos_token") != Some(false))
            .then_some(cls)
            .flatten();
        let end = (self.flag("add_eos_token") != Some(false)
            || self.flag("add_sep_token") == Some(true))
        .then_some(sep)
        .flatten();
        Ok(json!({
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                           "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": self.template(start, end),
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
            "model": {"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab},
        }))
    }
}

/// A vocabulary entry of llama.cpp's BERT form back in WordPiece's: `▁word` is `word`,
/// `[CLS]`-like tokens stay, a bare piece continues a word (`##piece`).
fn wordpiece_token(token: &str) -> String {
    if let Some(word) = token.strip_prefix(PHANTOM_SPACE) {
        word.to_string()
    } else if token.starts_with('[') && token.ends_with(']') {
        token.to_string()
    } else {
        format!("##{token}")
    }
}

impl GgufFile {
    /// The tokenizer of the file; `model` names it in errors.
    pub(crate) fn tokenizer(&self, model: &str) -> Result<Tokenizer> {
        let failed = |reason: String| Error::Tokenizer {
            model: model.to_string(),
            reason,
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            self.value(key)
                .ok_or_else(|| failed(format!("no `{key}` in the metadata")))?
                .to_vec()
                .map_err(|e| failed(e.to_string()))?
                .iter()
                .map(|v| v.to_string().cloned().map_err(|e| failed(e.to_string())))
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let types = match self.value("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(|e| failed(e.to_string()))?
                .iter()
                .map(|t| t.to_i32().map(i64::from).map_err(|e| failed(e.to_string())))
                .collect::<Result<Vec<_>>>()?,
            None => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(failed(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let kind = self
            .value("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let vocabulary = Vocabulary {
            file: self,
            model: model.to_string(),
            tokens,
            types,
        };
        let mut json = match kind.as_str() {
            "gpt2" => vocabulary.bpe()?,
            "bert" => vocabulary.wordpiece()?,
            other => {
                return Err(failed(format!(
                    "tokenizer model `{other}` is not supported from GGUF (supported: gpt2, bert)"
                )))
            }
        };
        json["version"] = json!("1.0");
        json["truncation"] = Json::Null;
        json["padding"] = Json::Null;
        json["added_tokens"] = vocabulary.added_tokens();
        let bytes = serde_json::to_vec(&json).map_err(|e| failed(e.to_string()))?;
        Tokenizer::from_bytes(bytes).map_err(|e| failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Architecture;
    use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};

    /// A header-only GGUF file with this tokenizer metadata.
    fn file(entries: Vec<(&str, Value)>) -> GgufFile {
        let strings =
            |v: &[&str]| Value::Array(v.iter().map(|s| Value::String(s.to_string())).collect());
        let mut metadata: std::collections::HashMap<String, Value> = [
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("qwen2".into())),
            (
                "tokenizer.ggml.tokens",
                strings(&["a", "b", "ab", "<|endoftext|>"]),
            ),
            (
                "tokenizer.ggml.token_type",
                Value::Array([1, 1, 1, 3].map(Value::I32).to_vec()),
            ),
            ("tokenizer.ggml.merges", strings(&["a b"])),
            ("tokenizer.ggml.eos_token_id", Value::U32(3)),
            ("tokenizer.ggml.add_eos_token", Value::Bool(true)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        metadata.extend(entries.into_iter().map(|(k, v)| (k.to_string(), v)));
        GgufFile {
            path: "t.gguf".into(),
            content: Content {
                magic: VersionedMagic::GgufV3,
                metadata,
                tensor_infos: Default::default(),
                tensor_data_offset: 0,
            },
            architecture: Architecture::Qwen3,
        }
    }

    #[test]
    fn bpe_merges_control_tokens_and_the_end_token() {
        let tokenizer = file(Vec::new()).tokenizer("m").unwrap();
        let ids = |text: &str| tokenizer.encode(text, true).unwrap().get_ids().to_vec();
        assert_eq!(ids("ab"), [2, 3]);
        assert_eq!(ids("ab<|endoftext|>b"), [2, 3, 1, 3]);
        let bare = file(vec![("tokenizer.ggml.add_eos_token", Value::Bool(false))]);
        let ids = bare.tokenizer("m").unwrap().encode("ba", true).unwrap();
        assert_eq!(ids.get_ids(), [1, 0]);
    }

    #[test]
    fn unknown_tokenizers_are_refused_by_name() {
        for (key, value) in [
            ("tokenizer.ggml.pre", "llama-bpe"),
            ("tokenizer.ggml.model", "t5"),
        ] {
            let err = file(vec![(key, Value::String(value.into()))])
                .tokenizer("m")
                .unwrap_err();
            assert!(
                matches!(&err, Error::Tokenizer { reason, .. } if reason.contains(value)),
                "{err}"
            );
        }
    }

    #[test]
    fn wordpiece_tokens_come_back() {
        assert_eq!(wordpiece_token("\u{2581}hello"), "hello");
        assert_eq!(wordpiece_token("llo"), "##llo");
        assert_eq!(wordpiece_token("[SEP]"), "[SEP]");
        assert_eq!(wordpiece_token("]"), "##]");
    }
}
