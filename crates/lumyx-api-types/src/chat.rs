//! Chat completions: `POST /v1/chat/completions` in OpenAI's shapes, plus
//! Lumyx's `conversation_id`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::json_path;
use crate::role::Role;

/// Up to 16 string pairs attached to an object, as OpenAI's `metadata`.
pub type Metadata = BTreeMap<String, String>;

/// The body of `POST /v1/chat/completions`.
///
/// Fields Lumyx reads are typed; `tools` and `tool_choice` are passed through
/// as JSON; any other field is kept in [`extra`](Self::extra) and written back,
/// so a proxy loses nothing. Serde checks types only: call
/// [`Validate::validate`](crate::Validate::validate) for ranges and roles, or
/// read bodies with [`parse_json`](crate::parse_json), which does both.
///
/// ```
/// use lumyx_api_types::{ChatCompletionRequest, ChatMessage, Validate};
///
/// let request = ChatCompletionRequest::new(
///     "nova_1_1",
///     vec![ChatMessage::developer("Be brief."), ChatMessage::user("Hello!")],
/// )
/// .with_temperature(0.2)
/// .with_stream(true);
/// request.validate().unwrap();
/// assert_eq!(request.last_user_text().as_deref(), Some("Hello!"));
/// assert!(request.include_usage());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionRequest {
    /// The model to use.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature, 0 to 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Most tokens to generate (deprecated by OpenAI for `max_completion_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Most tokens to generate, reasoning tokens included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// How many choices to generate, 1 to 128
    /// ([`CHOICES_RANGE`](crate::CHOICES_RANGE)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Sequences at which generation stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Whether to answer with server-sent [`ChatCompletionChunk`]s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Options of the stream; only allowed with `stream: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// An end-user id, for abuse monitoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Pairs stored with the completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Tools the model may call, passed through unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Which tool the model must call, passed through unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Lumyx extension: load this conversation before `messages` and append
    /// the exchange to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Every other field of the body, kept verbatim. Do not put a key here
    /// that is also a typed field: it would be written twice.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatCompletionRequest {
    /// A request with its two required fields and nothing else.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            temperature: None,
            top_p: None,
            max_tokens: None,
            max_completion_tokens: None,
            n: None,
            stop: None,
            stream: None,
            stream_options: None,
            user: None,
            metadata: None,
            tools: None,
            tool_choice: None,
            conversation_id: None,
            extra: Map::new(),
        }
    }

    /// Sets `temperature`.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets `max_completion_tokens`.
    #[must_use]
    pub fn with_max_completion_tokens(mut self, max: u32) -> Self {
        self.max_completion_tokens = Some(max);
        self
    }

    /// Sets `n`.
    #[must_use]
    pub fn with_n(mut self, n: u32) -> Self {
        self.n = Some(n);
        self
    }

    /// Asks for a stream; `include_usage` adds the final usage chunk.
    #[must_use]
    pub fn with_stream(mut self, include_usage: bool) -> Self {
        self.stream = Some(true);
        self.stream_options = include_usage.then_some(StreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
        self
    }

    /// Sets Lumyx's `conversation_id`.
    #[must_use]
    pub fn with_conversation_id(mut self, conversation_id: impl Into<String>) -> Self {
        self.conversation_id = Some(conversation_id.into());
        self
    }

    /// Whether the caller asked for a stream (`stream: true`).
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// Whether a stream should end with a usage chunk
    /// (`stream_options.include_usage: true`).
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            == Some(true)
    }

    /// The text of the last `user` message, if there is one.
    pub fn last_user_text(&self) -> Option<Cow<'_, str>> {
        self.messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .and_then(ChatMessage::text)
    }
}

/// One message of a chat request, tagged by its `role`.
///
/// One struct serves every role, so that a role this crate does not know
/// still reads; which fields a role needs is checked by validation
/// (`content` for `developer`, `system`, `user` and `tool`; `tool_call_id`
/// for `tool`; `content` or `tool_calls` for `assistant`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// Who wrote the message.
    pub role: Role,
    /// Text or parts. Always written (`null` when absent, which only an
    /// assistant message with `tool_calls` or `refusal` may be).
    pub content: Option<MessageContent>,
    /// An optional name of the participant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls an assistant message made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The tool call a `tool` message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A refusal an assistant message made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Every other field of the message, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    /// A message of `role` with text content.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(MessageContent::Text(text.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            refusal: None,
            extra: Map::new(),
        }
    }

    /// A `developer` message.
    pub fn developer(text: impl Into<String>) -> Self {
        Self::new(Role::Developer, text)
    }

    /// A `system` message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, text)
    }

    /// A `user` message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, text)
    }

    /// An `assistant` message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(Role::Assistant, text)
    }

    /// A `tool` message answering the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new(Role::Tool, text)
        }
    }

    /// The text of the message: its string content, or its text parts
    /// joined by newlines. `None` when it has no text.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        self.content.as_ref().and_then(MessageContent::text)
    }
}

/// The content of a request message: a string or a list of parts.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Text, images, audio, files, refusals.
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text: the string itself, or the text parts joined by newlines;
    /// `None` when there is no text part.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            MessageContent::Text(text) => Some(Cow::Borrowed(text)),
            MessageContent::Parts(parts) => {
                let mut texts = parts.iter().filter_map(|part| match part {
                    ContentPart::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                });
                let first = texts.next()?;
                match texts.next() {
                    None => Some(Cow::Borrowed(first)),
                    Some(second) => {
                        let mut joined = format!("{first}\n{second}");
                        for text in texts {
                            joined.push('\n');
                            joined.push_str(text);
                        }
                        Some(Cow::Owned(joined))
                    }
                }
            }
        }
    }
}

impl From<String> for MessageContent {
    fn from(text: String) -> Self {
        MessageContent::Text(text)
    }
}

impl From<&str> for MessageContent {
    fn from(text: &str) -> Self {
        MessageContent::Text(text.to_owned())
    }
}

impl Serialize for MessageContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MessageContent::Text(text) => serializer.serialize_str(text),
            MessageContent::Parts(parts) => {
                let mut seq = serializer.serialize_seq(Some(parts.len()))?;
                for part in parts {
                    seq.serialize_element(part)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = MessageContent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MessageContent, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(MessageContent::Parts(parts))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One part of a message's content, tagged by `type`. A part of a type this
/// crate does not know is kept whole as `Other`; the fields of a known part
/// that this crate does not model (`cache_control`, …) are kept in its
/// `extra` and written back.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    /// `{"type":"text","text":...}`
    Text {
        /// The text.
        text: String,
        /// Any other field of the part, written back as read.
        extra: Map<String, Value>,
    },
    /// `{"type":"image_url","image_url":{"url":...,"detail":...}}`
    ImageUrl {
        /// The image.
        image_url: ImageUrl,
        /// Any other field of the part, written back as read.
        extra: Map<String, Value>,
    },
    /// `{"type":"input_audio","input_audio":{"data":...,"format":...}}`
    InputAudio {
        /// The audio.
        input_audio: InputAudio,
        /// Any other field of the part, written back as read.
        extra: Map<String, Value>,
    },
    /// `{"type":"file","file":{...}}`
    File {
        /// The file.
        file: FileRef,
        /// Any other field of the part, written back as read.
        extra: Map<String, Value>,
    },
    /// `{"type":"refusal","refusal":...}` (assistant messages)
    Refusal {
        /// The refusal text.
        refusal: String,
        /// Any other field of the part, written back as read.
        extra: Map<String, Value>,
    },
    /// A part of another type, kept verbatim (a JSON object with a `type`).
    Other(Value),
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text {
            text: text.into(),
            extra: Map::new(),
        }
    }

    /// The `type` of the part.
    pub fn kind(&self) -> &str {
        match self {
            ContentPart::Other(value) => value.get("type").and_then(Value::as_str).unwrap_or(""),
            known => known.known_kind().map_or("", PartKind::as_str),
        }
    }

    /// The fields of a known part this crate does not model; `None` for
    /// [`ContentPart::Other`], which keeps everything in its value.
    pub fn extra(&self) -> Option<&Map<String, Value>> {
        match self {
            ContentPart::Text { extra, .. }
            | ContentPart::ImageUrl { extra, .. }
            | ContentPart::InputAudio { extra, .. }
            | ContentPart::File { extra, .. }
            | ContentPart::Refusal { extra, .. } => Some(extra),
            ContentPart::Other(_) => None,
        }
    }

    fn extra_mut(&mut self) -> Option<&mut Map<String, Value>> {
        match self {
            ContentPart::Text { extra, .. }
            | ContentPart::ImageUrl { extra, .. }
            | ContentPart::InputAudio { extra, .. }
            | ContentPart::File { extra, .. }
            | ContentPart::Refusal { extra, .. } => Some(extra),
            ContentPart::Other(_) => None,
        }
    }

    fn known_kind(&self) -> Option<PartKind> {
        Some(match self {
            ContentPart::Text { .. } => PartKind::Text,
            ContentPart::ImageUrl { .. } => PartKind::ImageUrl,
            ContentPart::InputAudio { .. } => PartKind::InputAudio,
            ContentPart::File { .. } => PartKind::File,
            ContentPart::Refusal { .. } => PartKind::Refusal,
            ContentPart::Other(_) => return None,
        })
    }
}

/// An image of an `image_url` part: a URL or a `data:` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// The URL or base64 `data:` URL of the image.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The audio of an `input_audio` part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAudio {
    /// Base64 audio data.
    pub data: String,
    /// `wav` or `mp3`.
    pub format: String,
}

/// The file of a `file` part.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileRef {
    /// An uploaded file's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// Base64 file data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    /// The file's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// The known `type`s of a content part. Each part keeps its payload in the
/// field named like its type (`"image_url": {...}`), so the tag is also the
/// field's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    ImageUrl,
    InputAudio,
    File,
    Refusal,
}

impl PartKind {
    fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag {
            "text" => PartKind::Text,
            "image_url" => PartKind::ImageUrl,
            "input_audio" => PartKind::InputAudio,
            "file" => PartKind::File,
            "refusal" => PartKind::Refusal,
            _ => return None,
        })
    }

    /// The tag, and the name of the field holding the payload.
    fn as_str(self) -> &'static str {
        match self {
            PartKind::Text => "text",
            PartKind::ImageUrl => "image_url",
            PartKind::InputAudio => "input_audio",
            PartKind::File => "file",
            PartKind::Refusal => "refusal",
        }
    }

    /// Reads the payload from `deserializer`, into a part with no extra
    /// fields yet.
    fn read<'de, D: Deserializer<'de>>(self, deserializer: D) -> Result<ContentPart, D::Error> {
        let extra = Map::new();
        Ok(match self {
            PartKind::Text => ContentPart::Text {
                text: String::deserialize(deserializer)?,
                extra,
            },
            PartKind::ImageUrl => ContentPart::ImageUrl {
                image_url: ImageUrl::deserialize(deserializer)?,
                extra,
            },
            PartKind::InputAudio => ContentPart::InputAudio {
                input_audio: InputAudio::deserialize(deserializer)?,
                extra,
            },
            PartKind::File => ContentPart::File {
                file: FileRef::deserialize(deserializer)?,
                extra,
            },
            PartKind::Refusal => ContentPart::Refusal {
                refusal: String::deserialize(deserializer)?,
                extra,
            },
        })
    }
}

impl<'de> de::DeserializeSeed<'de> for PartKind {
    type Value = ContentPart;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ContentPart, D::Error> {
        self.read(deserializer)
    }
}

/// Serializes the payload of a known part.
struct Payload<'a>(&'a ContentPart);

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ContentPart::Text { text, .. } => text.serialize(serializer),
            ContentPart::ImageUrl { image_url, .. } => image_url.serialize(serializer),
            ContentPart::InputAudio { input_audio, .. } => input_audio.serialize(serializer),
            ContentPart::File { file, .. } => file.serialize(serializer),
            ContentPart::Refusal { refusal, .. } => refusal.serialize(serializer),
            ContentPart::Other(value) => value.serialize(serializer),
        }
    }
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;

        let (Some(kind), Some(extra)) = (self.known_kind(), self.extra()) else {
            return Payload(self).serialize(serializer);
        };
        let field = kind.as_str();
        // `type` and the payload's field are written once, even if a caller
        // put them in `extra` too.
        let extra = extra
            .iter()
            .filter(|(key, _)| key.as_str() != "type" && key.as_str() != field);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", field)?;
        map.serialize_entry(field, &Payload(self))?;
        for (key, value) in extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Reads a part field by field, so that a failure inside it keeps its path
/// (`content[0].image_url.url`, `content[0].type`). A payload met before the
/// `type` is buffered and read once the type is known, with its own path
/// tracker; the error then carries that inner path for
/// [`from_json_slice`](crate::from_json_slice) to append.
impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PartVisitor)
    }
}

struct PartVisitor;

impl<'de> Visitor<'de> for PartVisitor {
    type Value = ContentPart;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a content part object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ContentPart, A::Error> {
        let mut tag: Option<String> = None;
        let mut kind: Option<PartKind> = None;
        let mut part: Option<ContentPart> = None;
        let mut rest = Map::new();
        let mut tag_at = 0;
        while let Some(key) = map.next_key::<String>()? {
            if key == "type" {
                if tag.is_some() {
                    return Err(de::Error::duplicate_field("type"));
                }
                let read: String = map.next_value()?;
                kind = PartKind::from_tag(&read);
                tag = Some(read);
                tag_at = rest.len();
                continue;
            }
            match kind {
                Some(kind) if key == kind.as_str() => {
                    if part.is_some() {
                        return Err(de::Error::duplicate_field(kind.as_str()));
                    }
                    part = Some(map.next_value_seed(kind)?);
                }
                _ => {
                    rest.insert(key, map.next_value()?);
                }
            }
        }
        let Some(tag) = tag else {
            return Err(de::Error::missing_field("type"));
        };
        let Some(kind) = kind else {
            // Kept verbatim: `type` goes back where it was read (it matters
            // when serde_json keeps the order of keys).
            let mut object = Map::new();
            let mut rest = rest.into_iter();
            object.extend(rest.by_ref().take(tag_at));
            object.insert("type".to_owned(), Value::String(tag));
            object.extend(rest);
            return Ok(ContentPart::Other(Value::Object(object)));
        };
        let field = kind.as_str();
        let mut part = match (part, rest.remove(field)) {
            (Some(_), Some(_)) => return Err(de::Error::duplicate_field(field)),
            (Some(part), None) => part,
            (None, Some(buffered)) => {
                let mut track = serde_path_to_error::Track::new();
                let read = kind.read(serde_path_to_error::Deserializer::new(buffered, &mut track));
                read.map_err(|error| {
                    let inner = json_path::render(&track.path());
                    json_path::nested_error(field, &inner, &error)
                })?
            }
            (None, None) => return Err(de::Error::missing_field(field)),
        };
        if let Some(extra) = part.extra_mut() {
            *extra = rest;
        }
        Ok(part)
    }
}

/// `stop`: one sequence or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Stop {
    /// A single stop sequence.
    One(String),
    /// Several stop sequences.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Stop {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StopVisitor;

        impl<'de> Visitor<'de> for StopVisitor {
            type Value = Stop;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Stop, E> {
                Ok(Stop::One(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Stop, E> {
                Ok(Stop::One(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stop, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element()? {
                    all.push(one);
                }
                Ok(Stop::Many(all))
            }
        }

        deserializer.deserialize_any(StopVisitor)
    }
}

/// `stream_options` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage of the whole request (and `usage: null`
    /// on every chunk before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Whether chunks carry an `obfuscation` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_obfuscation: Option<bool>,
}

open_enum! {
    /// The `type` of a tool call.
    pub enum ToolType {
        /// A function tool.
        Function => "function",
        /// A custom tool with free-form input.
        Custom => "custom",
    }
}

/// A tool call made by the model (in a response) or replayed (in a request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The id a `tool` message answers with `tool_call_id`.
    pub id: String,
    /// The kind of tool.
    #[serde(rename = "type")]
    pub kind: ToolType,
    /// The call of a `function` tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCall>,
    /// The call of a `custom` tool, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

/// The function a tool call invokes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// The arguments, a JSON text generated by the model (check it).
    pub arguments: String,
}

/// A tool call piece in a streaming delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallChunk {
    /// Which tool call of the message this piece extends.
    pub index: u32,
    /// The id, on the first piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The kind of tool, on the first piece.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ToolType>,
    /// Name and argument text pieces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallChunk>,
}

/// A piece of a function call in a streaming delta.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FunctionCallChunk {
    /// The function's name, on the first piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The next piece of the argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

open_enum! {
    /// Why the model stopped generating a choice.
    pub enum FinishReason {
        /// A natural stop point or a stop sequence.
        Stop => "stop",
        /// `max_tokens` / `max_completion_tokens` reached.
        Length => "length",
        /// The model called tools.
        ToolCalls => "tool_calls",
        /// Content was omitted by a content filter.
        ContentFilter => "content_filter",
        /// The model called a function (deprecated).
        FunctionCall => "function_call",
    }
}

/// Token counts of a request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// `prompt_tokens + completion_tokens`.
    pub total_tokens: u32,
    /// Breakdown of the prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Breakdown of the completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl Usage {
    /// Usage with the total computed (saturating).
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            prompt_tokens_details: None,
            completion_tokens_details: None,
        }
    }
}

/// Breakdown of prompt tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u32>,
    /// Audio input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u32>,
}

/// Breakdown of completion tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Tokens spent reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u32>,
    /// Audio output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u32>,
    /// Predicted tokens that appeared in the completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u32>,
    /// Predicted tokens that did not appear in the completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u32>,
}

/// The answer of a non-streaming chat completion (`object: "chat.completion"`).
///
/// `created` is in Unix seconds, as OpenAI writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    /// Id of the completion (`chatcmpl-…`).
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds of creation.
    pub created: i64,
    /// The model that answered.
    pub model: String,
    /// The choices, `n` of them.
    pub choices: Vec<Choice>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The service tier that served the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Fingerprint of the backend configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
}

impl ChatCompletionResponse {
    /// The `object` value of a completion.
    pub const OBJECT: &'static str = "chat.completion";

    /// A completion with the given choices and usage.
    pub fn new(
        id: impl Into<String>,
        created: i64,
        model: impl Into<String>,
        choices: Vec<Choice>,
        usage: Option<Usage>,
    ) -> Self {
        Self {
            id: id.into(),
            object: Self::OBJECT.to_owned(),
            created,
            model: model.into(),
            choices,
            usage,
            service_tier: None,
            system_fingerprint: None,
        }
    }
}

/// One choice of a completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Position among the choices.
    pub index: u32,
    /// The generated message.
    pub message: ResponseMessage,
    /// Log probabilities, when requested (written as `null` otherwise).
    #[serde(default)]
    pub logprobs: Option<Value>,
    /// Why generation stopped (written as `null` when unknown).
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
}

impl Choice {
    /// A choice holding an assistant text.
    pub fn new(index: u32, text: impl Into<String>, finish_reason: FinishReason) -> Self {
        Self {
            index,
            message: ResponseMessage::assistant(text),
            logprobs: None,
            finish_reason: Some(finish_reason),
        }
    }
}

/// A message generated by the model. `content` and `refusal` are always
/// written, `null` when absent, as OpenAI marks them required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    /// Always `assistant` today.
    pub role: Role,
    /// The text.
    #[serde(default)]
    pub content: Option<String>,
    /// The refusal text, if the model refused.
    #[serde(default)]
    pub refusal: Option<String>,
    /// Tool calls the model made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Annotations such as URL citations, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<Value>>,
    /// Audio output, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Value>,
}

impl ResponseMessage {
    /// An assistant message with `text` and an empty `annotations` list.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: Some(text.into()),
            refusal: None,
            tool_calls: None,
            annotations: Some(Vec::new()),
            audio: None,
        }
    }
}

/// One server-sent event of a streaming completion
/// (`object: "chat.completion.chunk"`).
///
/// `usage` has three states, as on the wire: absent (`None`, the stream was
/// not asked for usage), `null` (`Some(None)`, every chunk but the last when
/// `include_usage` is on) and the totals (`Some(Some(usage))`, the last chunk,
/// whose `choices` is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Id of the completion, the same on every chunk.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds of creation, the same on every chunk.
    pub created: i64,
    /// The model that answers.
    pub model: String,
    /// The service tier that serves the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Fingerprint of the backend configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// The deltas of this chunk; empty on the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// See the type's documentation.
    #[serde(
        default,
        with = "crate::wire::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub usage: Option<Option<Usage>>,
    /// Random padding some servers add against length side channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obfuscation: Option<String>,
}

impl ChatCompletionChunk {
    /// The `object` value of a chunk.
    pub const OBJECT: &'static str = "chat.completion.chunk";

    /// A chunk with one choice. With `include_usage`, it carries `usage: null`.
    pub fn delta(
        id: impl Into<String>,
        created: i64,
        model: impl Into<String>,
        choice: ChunkChoice,
        include_usage: bool,
    ) -> Self {
        Self::with(
            id.into(),
            created,
            model.into(),
            vec![choice],
            include_usage.then_some(None),
        )
    }

    /// The last chunk of a stream asked for usage: no choices, the totals.
    pub fn usage(
        id: impl Into<String>,
        created: i64,
        model: impl Into<String>,
        usage: Usage,
    ) -> Self {
        Self::with(
            id.into(),
            created,
            model.into(),
            Vec::new(),
            Some(Some(usage)),
        )
    }

    fn with(
        id: String,
        created: i64,
        model: String,
        choices: Vec<ChunkChoice>,
        usage: Option<Option<Usage>>,
    ) -> Self {
        Self {
            id,
            object: Self::OBJECT.to_owned(),
            created,
            model,
            service_tier: None,
            system_fingerprint: None,
            choices,
            usage,
            obfuscation: None,
        }
    }
}

/// One choice's delta in a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Position among the choices.
    pub index: u32,
    /// What this chunk adds.
    pub delta: Delta,
    /// Log probabilities, when requested (written as `null` otherwise).
    #[serde(default)]
    pub logprobs: Option<Value>,
    /// Set on the last delta of the choice (written as `null` before).
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
}

impl ChunkChoice {
    /// A choice delta.
    pub fn new(index: u32, delta: Delta, finish_reason: Option<FinishReason>) -> Self {
        Self {
            index,
            delta,
            logprobs: None,
            finish_reason,
        }
    }
}

/// What a chunk adds to a choice; every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delta {
    /// The role, on the first delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The next piece of text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The next piece of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Pieces of tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallChunk>>,
}

impl Delta {
    /// The first delta of an assistant message: its role and empty content.
    pub fn start() -> Self {
        Self {
            role: Some(Role::Assistant),
            content: Some(String::new()),
            ..Self::default()
        }
    }

    /// A delta adding `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: Some(text.into()),
            ..Self::default()
        }
    }
}

// Hand-written deserializers for the two structs that keep unknown fields:
// `#[serde(flatten)]` would buffer the whole object before reading it, which
// costs a request body's worth of allocations on the hot path.

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

/// Reads `T` from a JSON value, for tests of the hand-written readers.
#[cfg(test)]
fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(value)
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
        let request: ChatCompletionRequest = from_value(body.clone()).unwrap();
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
    fn content_reads_text_and_parts() {
        let message: ChatMessage = from_value(json!({
            "role": "user",
            "content": [
                {"type": "text", "text": "What is"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                {"type": "text", "text": "in this image?"},
                {"type": "hologram", "hologram": {"id": 1}}
            ]
        }))
        .unwrap();
        assert_eq!(message.text().unwrap(), "What is\nin this image?");
        let Some(MessageContent::Parts(parts)) = &message.content else {
            panic!("expected parts");
        };
        assert_eq!(parts[1].kind(), "image_url");
        assert_eq!(parts[3].kind(), "hologram");
        assert!(matches!(parts[3], ContentPart::Other(_)));
        let text: MessageContent = from_value(json!("plain")).unwrap();
        assert_eq!(text.text().unwrap(), "plain");
        assert!(from_value::<MessageContent>(json!(3)).is_err());
        assert!(from_value::<ContentPart>(json!({"type": "text"})).is_err());
        assert!(from_value::<ContentPart>(json!({"text": "x"})).is_err());
        assert!(from_value::<ContentPart>(json!("x")).is_err());
    }

    #[test]
    fn field_counts_cover_every_variant() {
        assert_eq!(
            RequestField::COUNT,
            RequestField::ConversationId as usize + 1
        );
        assert_eq!(MessageField::COUNT, MessageField::Refusal as usize + 1);
    }

    #[test]
    fn known_parts_keep_their_unknown_fields() {
        let written = json!([
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}, "x_tag": 1},
            {"type": "refusal", "refusal": "no"}
        ]);
        let content: MessageContent = from_value(written.clone()).unwrap();
        let MessageContent::Parts(parts) = &content else {
            panic!("expected parts");
        };
        assert_eq!(
            parts[0].extra().unwrap()["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert_eq!(parts[1].extra().unwrap().len(), 1);
        assert!(parts[2].extra().unwrap().is_empty());
        assert_eq!(serde_json::to_value(&content).unwrap(), written);
        // Read with `type` last, written with `type` first, same object.
        let late: ContentPart = serde_json::from_str(
            r#"{"cache_control":{"type":"ephemeral"},"text":"hi","type":"text"}"#,
        )
        .unwrap();
        assert_eq!(late, parts[0]);
        // `type` and the payload field are written once even if put in `extra`.
        let mut odd = ContentPart::text("a");
        if let ContentPart::Text { extra, .. } = &mut odd {
            extra.insert("type".into(), json!("image_url"));
            extra.insert("text".into(), json!("b"));
        }
        assert_eq!(
            serde_json::to_string(&odd).unwrap(),
            r#"{"type":"text","text":"a"}"#
        );
    }

    #[test]
    fn stop_reads_one_or_many() {
        assert_eq!(
            from_value::<Stop>(json!("\n")).unwrap(),
            Stop::One("\n".into())
        );
        assert_eq!(
            from_value::<Stop>(json!(["a", "b"])).unwrap(),
            Stop::Many(vec!["a".into(), "b".into()])
        );
        assert!(from_value::<Stop>(json!(1)).is_err());
    }

    #[test]
    fn chunk_usage_has_three_states() {
        let base = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []});
        let absent: ChatCompletionChunk = from_value(base.clone()).unwrap();
        assert_eq!(absent.usage, None);
        let mut with_null = base.clone();
        with_null["usage"] = Value::Null;
        let null: ChatCompletionChunk = from_value(with_null.clone()).unwrap();
        assert_eq!(null.usage, Some(None));
        assert_eq!(serde_json::to_value(&null).unwrap(), with_null);
        let last = ChatCompletionChunk::usage("c", 1, "m", Usage::new(9, 12));
        assert_eq!(
            serde_json::to_value(&last).unwrap()["usage"]["total_tokens"],
            21
        );
    }

    #[test]
    fn chunk_constructors_write_whole_chunks() {
        let choice = ChunkChoice::new(0, Delta::text("Hi"), None);
        let with_usage = ChatCompletionChunk::delta("c", 1, "m", choice.clone(), true);
        let expected = json!({
            "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [serde_json::to_value(&choice).unwrap()],
            "usage": null
        });
        assert_eq!(serde_json::to_value(&with_usage).unwrap(), expected);
        let without = ChatCompletionChunk::delta("c", 1, "m", choice, false);
        let mut expected_without = expected;
        expected_without.as_object_mut().unwrap().remove("usage");
        assert_eq!(serde_json::to_value(&without).unwrap(), expected_without);
        let last = ChatCompletionChunk::usage("c", 1, "m", Usage::new(9, 12));
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            json!({
                "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [],
                "usage": serde_json::to_value(Usage::new(9, 12)).unwrap()
            })
        );
    }

    #[test]
    fn response_writes_required_nulls() {
        let mut choice = Choice::new(0, "hi", FinishReason::Stop);
        choice.finish_reason = None;
        let response = ChatCompletionResponse::new("chatcmpl-1", 2, "m", vec![choice], None);
        let value = serde_json::to_value(&response).unwrap();
        // Whole objects: indexing a missing key would also give null.
        assert_eq!(
            value["choices"][0],
            json!({
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": null
            })
        );
        assert!(value.get("usage").is_none());
    }

    #[test]
    fn request_helpers_read_what_the_server_needs() {
        let request = ChatCompletionRequest::new(
            "m",
            vec![
                ChatMessage::user("first"),
                ChatMessage::assistant("reply"),
                ChatMessage::user("second"),
                ChatMessage::tool("call_1", "42"),
            ],
        )
        .with_conversation_id("conv_1");
        assert_eq!(request.last_user_text().unwrap(), "second");
        assert!(!request.is_stream());
        assert!(!request.include_usage());
        assert_eq!(request.conversation_id.as_deref(), Some("conv_1"));
        let streaming = request.with_stream(false);
        assert!(streaming.is_stream());
        assert!(!streaming.include_usage());
    }
}
