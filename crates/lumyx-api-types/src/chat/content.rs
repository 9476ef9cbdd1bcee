//! The content of a request message: a string, or a list of parts tagged by
//! `type` (text, image, audio, file, refusal, and any type this crate does
//! not know, kept as JSON).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::json_path;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatMessage;
    use serde_json::json;

    #[test]
    fn content_reads_text_and_parts() {
        let message: ChatMessage = serde_json::from_value(json!({
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
        let text: MessageContent = serde_json::from_value(json!("plain")).unwrap();
        assert_eq!(text.text().unwrap(), "plain");
        assert!(serde_json::from_value::<MessageContent>(json!(3)).is_err());
        assert!(serde_json::from_value::<ContentPart>(json!({"type": "text"})).is_err());
        assert!(serde_json::from_value::<ContentPart>(json!({"text": "x"})).is_err());
        assert!(serde_json::from_value::<ContentPart>(json!("x")).is_err());
    }

    #[test]
    fn known_parts_keep_their_unknown_fields() {
        let written = json!([
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}, "x_tag": 1},
            {"type": "refusal", "refusal": "no"}
        ]);
        let content: MessageContent = serde_json::from_value(written.clone()).unwrap();
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
}
