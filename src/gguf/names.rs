//! llama.cpp's tensor names (as the `gguf` package's `TensorNameMap` writes them) for the names
//! rembed's model files ask for: one table per architecture, and nothing else knows either
//! spelling.

use crate::models::Architecture;

/// `(rembed's module, GGUF's module)`; `{i}` stands for the layer number, and the `.weight` or
/// `.bias` after the module is the same in both.
type Table = &'static [(&'static str, &'static str)];

const QWEN3: Table = &[
    ("embed_tokens", "token_embd"),
    ("norm", "output_norm"),
    ("layers.{i}.input_layernorm", "blk.{i}.attn_norm"),
    ("layers.{i}.self_attn.q_proj", "blk.{i}.attn_q"),
    ("layers.{i}.self_attn.k_proj", "blk.{i}.attn_k"),
    ("layers.{i}.self_attn.v_proj", "blk.{i}.attn_v"),
    ("layers.{i}.self_attn.o_proj", "blk.{i}.attn_output"),
    ("layers.{i}.self_attn.q_norm", "blk.{i}.attn_q_norm"),
    ("layers.{i}.self_attn.k_norm", "blk.{i}.attn_k_norm"),
    ("layers.{i}.post_attention_layernorm", "blk.{i}.ffn_norm"),
    ("layers.{i}.mlp.gate_proj", "blk.{i}.ffn_gate"),
    ("layers.{i}.mlp.up_proj", "blk.{i}.ffn_up"),
    ("layers.{i}.mlp.down_proj", "blk.{i}.ffn_down"),
];

/// nomic's `fc11` is the SwiGLU's linear half (llama.cpp's `ffn_up`), `fc12` its gate.
const NOMIC_BERT: Table = &[
    ("embeddings.word_embeddings", "token_embd"),
    ("embeddings.token_type_embeddings", "token_types"),
    ("emb_ln", "token_embd_norm"),
    ("encoder.layers.{i}.attn.Wqkv", "blk.{i}.attn_qkv"),
    ("encoder.layers.{i}.attn.out_proj", "blk.{i}.attn_output"),
    ("encoder.layers.{i}.norm1", "blk.{i}.attn_output_norm"),
    ("encoder.layers.{i}.mlp.fc11", "blk.{i}.ffn_up"),
    ("encoder.layers.{i}.mlp.fc12", "blk.{i}.ffn_gate"),
    ("encoder.layers.{i}.mlp.fc2", "blk.{i}.ffn_down"),
    ("encoder.layers.{i}.norm2", "blk.{i}.layer_output_norm"),
];

/// `general.architecture` of the architectures rembed reads from GGUF.
const ARCHITECTURES: [(Architecture, &str); 2] = [
    (Architecture::Qwen3, "qwen3"),
    (Architecture::NomicBert, "nomic-bert"),
];

/// The architecture a GGUF file names, if rembed reads it.
pub(crate) fn architecture(gguf_name: &str) -> Option<Architecture> {
    ARCHITECTURES
        .iter()
        .find(|(_, name)| *name == gguf_name)
        .map(|(a, _)| *a)
}

/// The GGUF name of an architecture (the prefix of its metadata keys).
pub(crate) fn arch_name(architecture: Architecture) -> Option<&'static str> {
    ARCHITECTURES
        .iter()
        .find(|(a, _)| *a == architecture)
        .map(|(_, name)| *name)
}

/// The names rembed reads, for messages.
pub(crate) fn supported() -> String {
    ARCHITECTURES.map(|(_, name)| name).join(", ")
}

/// The table of an architecture rembed reads from GGUF, `None` for the others.
pub(crate) fn table(architecture: Architecture) -> Option<Table> {
    match architecture {
        Architecture::Qwen3 => Some(QWEN3),
        Architecture::NomicBert => Some(NOMIC_BERT),
        _ => None,
    }
}

/// The GGUF name of the tensor the model asks for as `name`, if the table has its module.
pub(crate) fn gguf_name(table: Table, name: &str) -> Option<String> {
    let (module, suffix) = name.rsplit_once('.')?;
    table.iter().find_map(|(ours, theirs)| {
        let mapped = match ours.split_once("{i}") {
            None => (module == *ours).then(|| theirs.to_string()),
            Some((before, after)) => {
                let layer = module.strip_prefix(before)?.strip_suffix(after)?;
                layer
                    .parse::<usize>()
                    .ok()
                    .map(|i| theirs.replace("{i}", &i.to_string()))
            }
        };
        mapped.map(|m| format!("{m}.{suffix}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_with_their_layer_and_suffix() {
        let qwen3 = table(Architecture::Qwen3).unwrap();
        assert_eq!(
            gguf_name(qwen3, "layers.12.self_attn.q_proj.weight").as_deref(),
            Some("blk.12.attn_q.weight")
        );
        assert_eq!(
            gguf_name(qwen3, "norm.weight").as_deref(),
            Some("output_norm.weight")
        );
        assert_eq!(gguf_name(qwen3, "layers.x.mlp.up_proj.weight"), None);
        assert_eq!(gguf_name(qwen3, "lm_head.weight"), None);
        let nomic = table(Architecture::NomicBert).unwrap();
        assert_eq!(
            gguf_name(nomic, "encoder.layers.0.norm2.bias").as_deref(),
            Some("blk.0.layer_output_norm.bias")
        );
        assert!(table(Architecture::Bert).is_none());
    }
}
