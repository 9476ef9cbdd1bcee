//! The hand-written readers (`Deserialize`) of the chat request and its
//! messages, the two structs that keep unknown fields: `#[serde(flatten)]`
//! would buffer the whole object before reading it, which costs a request
//! body's worth of allocations on the hot path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::request::{ChatCompletionRequest, ChatMessage};
use crate::role::Role;

/// The known fields of a struct read by hand.
trait Fields: Sized + Copy {
    const EXPECTING: &'static str;
    /// How many fields there are: the length of a `seen` array indexed by
    /// `field as usize`.
    const COUNT: usize;
    fn lookup(name: &str) -> Option<Self>;
}

/// Declares a field enum and its [`Fields`] from one list, so that `COUNT`
/// and `lookup` cannot fall out of step with the variants.
macro_rules! fields {
    ($name:ident, $expecting:literal { $($variant:ident = $wire:literal,)+ }) => {
        #[derive(Clone, Copy)]
        enum $name {
            $($variant,)+
        }

        impl Fields for $name {
            const EXPECTING: &'static str = $expecting;
            const COUNT: usize = [$($name::$variant),+].len();

            fn lookup(name: &str) -> Option<Self> {
                Some(match name {
                    $($wire => Self::$variant,)+
                    _ => return None,
                })
            }
        }
    };
}

enum Key<F> {
    Known(F),
    Other(String),
}

impl<'de, F: Fields> Deserialize<'de> for Key<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<F>(PhantomData<F>);

        impl<F: Fields> Visitor<'_> for KeyVisitor<F> {
            type Value = Key<F>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key<F>, E> {
                Ok(match F::lookup(name) {
                    Some(field) => Key::Known(field),
                    None => Key::Other(name.to_owned()),
                })
            }

            fn visit_string<E: de::Error>(self, name: String) -> Result<Key<F>, E> {
                Ok(match F::lookup(&name) {
                    Some(field) => Key::Known(field),
                    None => Key::Other(name),
                })
            }
        }

        deserializer.deserialize_identifier(KeyVisitor(PhantomData))
    }
}

fn fill<'de, A, T>(map: &mut A, slot: &mut Option<T>, name: &'static str) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// Fills an optional field, refusing a second occurrence; `null` reads as absent.
fn fill_opt<'de, A, T>(
    map: &mut A,
    seen: &mut bool,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if std::mem::replace(seen, true) {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = map.next_value()?;
    Ok(())
}

fn keep_extra<'de, A: MapAccess<'de>>(
    map: &mut A,
    extra: &mut Map<String, Value>,
    name: String,
) -> Result<(), A::Error> {
    let value: Value = map.next_value()?;
    if extra.insert(name, value).is_some() {
        return Err(de::Error::custom("duplicate field"));
    }
    Ok(())
}

fields!(RequestField, "a chat completion request object" {
    Model = "model",
    Messages = "messages",
    Temperature = "temperature",
    TopP = "top_p",
    MaxTokens = "max_tokens",
    MaxCompletionTokens = "max_completion_tokens",
    N = "n",
    Stop = "stop",
    Stream = "stream",
    StreamOptions = "stream_options",
    User = "user",
    Metadata = "metadata",
    Tools = "tools",
    ToolChoice = "tool_choice",
    ConversationId = "conversation_id",
});

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de> Visitor<'de> for ObjectVisitor<ChatCompletionRequest> {
    type Value = ChatCompletionRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(RequestField::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut model = None;
        let mut messages = None;
        let mut request = ChatCompletionRequest::new(String::new(), Vec::new());
        let mut seen = [false; RequestField::COUNT];
        while let Some(key) = map.next_key::<Key<RequestField>>()? {
            let field = match key {
                Key::Known(field) => field,
                Key::Other(name) => {
                    keep_extra(&mut map, &mut request.extra, name)?;
                    continue;
                }
            };
            let seen = &mut seen[field as usize];
            let r = &mut request;
            match field {
                RequestField::Model => fill(&mut map, &mut model, "model")?,
                RequestField::Messages => fill(&mut map, &mut messages, "messages")?,
                RequestField::Temperature => {
                    fill_opt(&mut map, seen, &mut r.temperature, "temperature")?
                }
                RequestField::TopP => fill_opt(&mut map, seen, &mut r.top_p, "top_p")?,
                RequestField::MaxTokens => {
                    fill_opt(&mut map, seen, &mut r.max_tokens, "max_tokens")?
                }
                RequestField::MaxCompletionTokens => fill_opt(
                    &mut map,
                    seen,
                    &mut r.max_completion_tokens,
                    "max_completion_tokens",
                )?,
                RequestField::N => fill_opt(&mut map, seen, &mut r.n, "n")?,
                RequestField::Stop => fill_opt(&mut map, seen, &mut r.stop, "stop")?,
                RequestField::Stream => fill_opt(&mut map, seen, &mut r.stream, "stream")?,
                RequestField::StreamOptions => {
                    fill_opt(&mut map, seen, &mut r.stream_options, "stream_options")?
                }
                RequestField::User => fill_opt(&mut map, seen, &mut r.user, "user")?,
                RequestField::Metadata => fill_opt(&mut map, seen, &mut r.metadata, "metadata")?,
                RequestField::Tools => fill_opt(&mut map, seen, &mut r.tools, "tools")?,
                RequestField::ToolChoice => {
                    fill_opt(&mut map, seen, &mut r.tool_choice, "tool_choice")?
                }
                RequestField::ConversationId => {
                    fill_opt(&mut map, seen, &mut r.conversation_id, "conversation_id")?
                }
            }
        }
        request.model = model.ok_or_else(|| de::Error::missing_field("model"))?;
        request.messages = messages.ok_or_else(|| de::Error::missing_field("messages"))?;
        Ok(request)
    }
}

impl<'de> Deserialize<'de> for ChatCompletionRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor::<Self>(PhantomData))
    }
}

fields!(MessageField, "a message object" {
    Role = "role",
    Content = "content",
    Name = "name",
    ToolCalls = "tool_calls",
    ToolCallId = "tool_call_id",
    Refusal = "refusal",
});

impl<'de> Visitor<'de> for ObjectVisitor<ChatMessage> {
    type Value = ChatMessage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MessageField::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut role = None;
        let mut message = ChatMessage {
            role: Role::User,
            content: None,
            name: None,
            tool_calls: None,
            tool_call_id: None,
            refusal: None,
            extra: Map::new(),
        };
        let mut seen = [false; MessageField::COUNT];
        while let Some(key) = map.next_key::<Key<MessageField>>()? {
            let field = match key {
                Key::Known(field) => field,
                Key::Other(name) => {
                    keep_extra(&mut map, &mut message.extra, name)?;
                    continue;
                }
            };
            let seen = &mut seen[field as usize];
            let m = &mut message;
            match field {
                MessageField::Role => fill(&mut map, &mut role, "role")?,
                MessageField::Content => fill_opt(&mut map, seen, &mut m.content, "content")?,
                MessageField::Name => fill_opt(&mut map, seen, &mut m.name, "name")?,
                MessageField::ToolCalls => {
                    fill_opt(&mut map, seen, &mut m.tool_calls, "tool_calls")?
                }
                MessageField::ToolCallId => {
                    fill_opt(&mut map, seen, &mut m.tool_call_id, "tool_call_id")?
                }
                MessageField::Refusal => fill_opt(&mut map, seen, &mut m.refusal, "refusal")?,
            }
        }
        message.role = role.ok_or_else(|| de::Error::missing_field("role"))?;
        Ok(message)
    }
}

impl<'de> Deserialize<'de> for ChatMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor::<Self>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_keeps_unknown_fields() {
        let body = json!({
            "model": "nova_1_1",
            "messages": [{"role": "user", "content": "hi", "cache": {"ttl": 5}}],
            "seed": 7,
            "response_format": {"type": "json_object"},
        });
        let request: ChatCompletionRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(request.extra["seed"], 7);
        assert_eq!(request.messages[0].extra["cache"], json!({"ttl": 5}));
        assert_eq!(serde_json::to_value(&request).unwrap(), body);
    }

    #[test]
    fn request_refuses_duplicates_and_missing_required_fields() {
        let err = serde_json::from_str::<ChatCompletionRequest>(
            r#"{"model":"a","model":"b","messages":[]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("duplicate field `model`"), "{err}");
        let err = serde_json::from_str::<ChatCompletionRequest>(
            r#"{"messages":[],"n":1,"n":2,"model":"m"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("duplicate field `n`"), "{err}");
        let err = serde_json::from_str::<ChatCompletionRequest>(r#"{"messages":[]}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `model`"), "{err}");
        let err = serde_json::from_str::<ChatMessage>(r#"{"content":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `role`"), "{err}");
    }

    #[test]
    fn field_counts_cover_every_variant() {
        assert_eq!(
            RequestField::COUNT,
            RequestField::ConversationId as usize + 1
        );
        assert_eq!(MessageField::COUNT, MessageField::Refusal as usize + 1);
    }
}
