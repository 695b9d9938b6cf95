//! [`Request`]: what an [`Embedder::embed_with`](crate::Embedder::embed_with) call asks for
//! beyond the inputs: which prompt, which dimension, which outputs, what to do with failures
//! and with texts longer than the model reads.

/// The prefix put in front of every text of a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// The model's document prompt (nomic's `search_document: `; none for most models), or
    /// nothing when prompts are turned off in [`Options`](crate::Options::with_prompts).
    #[default]
    Document,
    /// The model's query prompt (bge's `Represent this sentence ...`, Qwen3's default
    /// instruction), or nothing when prompts are turned off.
    Query,
    /// A query with your own task in the model's instruction template: Qwen3-Embedding's
    /// queries read `Instruct: {task}\nQuery:{text}`. Fails with
    /// [`Error::UnsupportedTask`](crate::Error::UnsupportedTask) for a model without one.
    /// Applied even when prompts are turned off, since the call asks for it.
    Task(String),
    /// This exact prefix (nomic's `clustering: `), applied even when prompts are turned off.
    Text(String),
    /// No prefix at all.
    None,
}

/// What to do with texts longer than the model's max length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LongText {
    /// Cut at the max length, as sentence-transformers does; the count of cut inputs is in
    /// [`Embeddings::truncated`](crate::Embeddings::truncated) and logged.
    #[default]
    Truncate,
    /// Split into chunks that each fit (at headings, paragraphs, sentences, then words; see
    /// [`TextSplitter`](crate::chunk::TextSplitter)), consecutive chunks sharing up to
    /// `overlap_tokens` tokens. Each text's row is the mean of its chunk vectors
    /// (re-normalized when the model normalizes), and every chunk's vector and byte range are
    /// in [`Embeddings::chunks`](crate::Embeddings::chunks). Nothing is cut.
    Chunks {
        /// Tokens shared by consecutive chunks; must leave room in a chunk.
        overlap_tokens: usize,
    },
}

/// Everything a call can ask for beside its inputs. `Request::default()` embeds documents with
/// the model's document prompt at the loaded dimension, stops at the first failure, returns
/// dense vectors only and truncates long texts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    pub(crate) prompt: Prompt,
    pub(crate) dim: Option<usize>,
    pub(crate) keep_going: bool,
    pub(crate) sparse: bool,
    pub(crate) colbert: bool,
    pub(crate) long_text: LongText,
}

impl Request {
    /// Documents: the model's document prompt. The same as `Request::default()`.
    pub fn documents() -> Self {
        Self::default()
    }

    /// Search queries: the model's query prompt.
    pub fn queries() -> Self {
        Self::default().with_prompt(Prompt::Query)
    }

    /// The prompt in front of every text. Default [`Prompt::Document`]. Token-id inputs take no
    /// prompt: any other than the default is refused for them.
    pub fn with_prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = prompt;
        self
    }

    /// Output dimension for this call, for Matryoshka models (truncated, then re-normalized).
    /// Default: the dimension the model was loaded with ([`Options::with_dim`](crate::Options::with_dim)).
    pub fn with_dim(mut self, dim: usize) -> Self {
        self.dim = Some(dim);
        self
    }

    /// Keep going past inputs that fail (one that does not fit in device memory even alone, one
    /// whose vector is not finite), recording them in
    /// [`Embeddings::failures`](crate::Embeddings::failures) with a zero row, so no finished
    /// work is lost. Default false: the first failure fails the call.
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// Also return sparse lexical weights ([`Embeddings::sparse`](crate::Embeddings::sparse)),
    /// for models that ship a `sparse_linear` head (bge-m3). Costs a small matrix product per
    /// token. Default false.
    pub fn with_sparse(mut self, sparse: bool) -> Self {
        self.sparse = sparse;
        self
    }

    /// Also return ColBERT multi-vectors ([`Embeddings::colbert`](crate::Embeddings::colbert)),
    /// for models that ship a `colbert_linear` head (bge-m3). One vector per token: memory grows
    /// with the text. Default false.
    pub fn with_colbert(mut self, colbert: bool) -> Self {
        self.colbert = colbert;
        self
    }

    /// What to do with texts longer than the model reads. Default [`LongText::Truncate`].
    pub fn with_long_text(mut self, long_text: LongText) -> Self {
        self.long_text = long_text;
        self
    }
}
