//! How the server counts tokens, the same way for a prompt and for a reply,
//! streamed or not, so that `usage` adds up.
//!
//! A deterministic approximation of a BPE tokenizer, documented so that a
//! client can check it: each run of letters and digits is one token per 4
//! characters (rounded up: OpenAI's rule of thumb for English text), each
//! other visible character is a token of its own, whitespace is no token.
//! Each message of a prompt adds 3 tokens (role and separators) and a
//! prompt adds 3 more that prime the reply, as OpenAI's cookbook counts its
//! chat format.

use lumyx_api_types::ChatMessage;

/// Tokens added per message of a prompt.
pub(crate) const TOKENS_PER_MESSAGE: u32 = 3;
/// Tokens added per prompt, priming the reply.
pub(crate) const TOKENS_PER_REPLY: u32 = 3;

/// The tokens of `text`.
///
/// ```
/// use lumyx_server::count_tokens;
///
/// assert_eq!(count_tokens(""), 0);
/// assert_eq!(count_tokens("Hello, world!"), 2 + 1 + 2 + 1); // "Hell|o" "," "worl|d" "!"
/// assert_eq!(count_tokens("a b c"), 3);
/// ```
pub fn count_tokens(text: &str) -> u32 {
    let mut tokens: u32 = 0;
    let mut run = 0u32;
    for character in text.chars() {
        if character.is_alphanumeric() {
            run += 1;
            continue;
        }
        tokens = tokens.saturating_add(run.div_ceil(4));
        run = 0;
        if !character.is_whitespace() {
            tokens = tokens.saturating_add(1);
        }
    }
    tokens.saturating_add(run.div_ceil(4))
}

/// The tokens of a prompt of `messages`: their text, names and tool calls'
/// arguments, plus the per-message and per-reply overheads.
pub(crate) fn prompt_tokens(messages: &[ChatMessage]) -> u32 {
    messages.iter().fold(TOKENS_PER_REPLY, |total, message| {
        let mut tokens = TOKENS_PER_MESSAGE;
        if let Some(text) = message.text() {
            tokens = tokens.saturating_add(count_tokens(&text));
        }
        if let Some(name) = &message.name {
            tokens = tokens.saturating_add(count_tokens(name) + 1);
        }
        for function in message
            .tool_calls
            .iter()
            .flatten()
            .filter_map(|call| call.function.as_ref())
        {
            tokens = tokens.saturating_add(count_tokens(&function.name));
            tokens = tokens.saturating_add(count_tokens(&function.arguments));
        }
        total.saturating_add(tokens)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_punctuation_and_space() {
        assert_eq!(count_tokens("   \n\t"), 0);
        assert_eq!(count_tokens("abcd"), 1);
        assert_eq!(count_tokens("abcde"), 2);
        assert_eq!(count_tokens("a-b"), 3);
        assert_eq!(count_tokens("naïve café"), 2 + 1);
        assert_eq!(count_tokens("2026-11-30"), 1 + 1 + 1 + 1 + 1);
    }

    #[test]
    fn a_prompt_counts_its_messages_and_overheads() {
        let messages = [ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
        // "Be" "brie|f" "." = 4; "Hi" = 1; 2 messages x 3; 3 for the reply.
        assert_eq!(prompt_tokens(&messages), 4 + 1 + 6 + 3);
        assert_eq!(prompt_tokens(&[]), 3);
    }

    #[test]
    fn counting_splits_add_up() {
        // The stream's pieces sum to the whole, as usage must.
        let text = "The demo model says: hello again, friend.";
        let pieces: u32 = text.split_inclusive(' ').map(count_tokens).sum();
        assert_eq!(pieces, count_tokens(text));
    }
}
