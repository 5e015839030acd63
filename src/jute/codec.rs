//! Jute primitives: the big-endian encoding ZooKeeper uses for every record on the wire.
//!
//! Encoding (org.apache.zookeeper.jute.BinaryOutputArchive):
//! - `int`: 4 bytes big-endian two's complement; `long`: 8 bytes; `boolean`: 1 byte (0 or 1).
//! - `buffer`: `int` length then the bytes; length -1 encodes null.
//! - `ustring`: like `buffer`, holding UTF-8; length -1 encodes null.
//! - `vector<T>`: `int` count then the elements; count -1 encodes null.
//!
//! Decoding is bounded: a length can never exceed the bytes left in the frame, so a hostile
//! length cannot make the server allocate more than the frame it already holds.

use thiserror::Error;

/// Why a record could not be decoded. Every variant closes the offending connection or
/// answers MarshallingError; none of them is the server's fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JuteError {
    #[error("record truncated: needed {needed} bytes at offset {offset}, {available} left")]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("negative length {length} at offset {offset}")]
    NegativeLength { offset: usize, length: i32 },
    #[error("{trailing} trailing bytes after the record")]
    TrailingBytes { trailing: usize },
    #[error("invalid value {value} for {field}")]
    InvalidValue { field: &'static str, value: i64 },
}

/// A cursor over one received frame.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Fails unless every byte of the frame was consumed.
    pub fn finish(&self) -> Result<(), JuteError> {
        match self.remaining() {
            0 => Ok(()),
            trailing => Err(JuteError::TrailingBytes { trailing }),
        }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], JuteError> {
        if self.remaining() < count {
            return Err(JuteError::Truncated {
                offset: self.offset,
                needed: count,
                available: self.remaining(),
            });
        }
        let slice = &self.bytes[self.offset..self.offset + count];
        self.offset += count;
        Ok(slice)
    }

    /// The next `count` bytes as they are (a field with no length prefix).
    pub fn read_fixed(&mut self, count: usize) -> Result<&'a [u8], JuteError> {
        self.take(count)
    }

    pub fn read_i32(&mut self) -> Result<i32, JuteError> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, JuteError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(i64::from_be_bytes(array))
    }

    pub fn read_byte(&mut self) -> Result<u8, JuteError> {
        Ok(self.take(1)?[0])
    }

    /// Java's readBoolean treats any non-zero byte as true.
    pub fn read_bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length prefix: -1 means null, any other negative value is malformed.
    fn read_length(&mut self) -> Result<Option<usize>, JuteError> {
        let offset = self.offset;
        let length = self.read_i32()?;
        match length {
            -1 => Ok(None),
            l if l < 0 => Err(JuteError::NegativeLength { offset, length }),
            l => Ok(Some(l as usize)),
        }
    }

    pub fn read_optional_buffer(&mut self) -> Result<Option<Vec<u8>>, JuteError> {
        match self.read_length()? {
            None => Ok(None),
            Some(length) => Ok(Some(self.take(length)?.to_vec())),
        }
    }

    /// A buffer where ZooKeeper treats null and empty alike (passwords, auth data).
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, JuteError> {
        Ok(self.read_optional_buffer()?.unwrap_or_default())
    }

    /// A ustring. Invalid UTF-8 is decoded with U+FFFD replacement characters, as Java's
    /// decoder does, so a bad path gets ZooKeeper's answer (BadArguments or NoNode) instead
    /// of a closed connection.
    pub fn read_optional_string(&mut self) -> Result<Option<String>, JuteError> {
        match self.read_length()? {
            None => Ok(None),
            Some(length) => {
                let bytes = self.take(length)?;
                Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
            }
        }
    }

    /// A ustring. Null decodes as the empty string: every path or scheme check downstream
    /// then rejects it exactly as ZooKeeper rejects a null path (BadArguments or NoNode).
    pub fn read_string(&mut self) -> Result<String, JuteError> {
        Ok(self.read_optional_string()?.unwrap_or_default())
    }

    /// A vector; null decodes as empty. Each element is at least `min_element_bytes` long,
    /// which bounds the allocation by the frame size.
    pub fn read_vec<T>(
        &mut self,
        min_element_bytes: usize,
        mut element: impl FnMut(&mut Self) -> Result<T, JuteError>,
    ) -> Result<Vec<T>, JuteError> {
        let count = self.read_length()?.unwrap_or(0);
        let capacity = count.min(self.remaining() / min_element_bytes.max(1));
        let mut items = Vec::with_capacity(capacity);
        for _ in 0..count {
            items.push(element(self)?);
        }
        Ok(items)
    }

    pub fn read_string_vec(&mut self) -> Result<Vec<String>, JuteError> {
        self.read_vec(4, |reader| reader.read_string())
    }
}

/// Appends jute primitives to a growable buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { bytes: Vec::new() }
    }

    /// A writer that reserves 4 bytes for the frame length, filled in by `finish_frame`.
    pub fn for_frame() -> Self {
        Writer {
            bytes: vec![0, 0, 0, 0],
        }
    }

    /// Writes the length prefix reserved by `for_frame` and returns the whole frame.
    pub fn finish_frame(mut self) -> Vec<u8> {
        let body_length = (self.bytes.len() - 4) as i32;
        self.bytes[0..4].copy_from_slice(&body_length.to_be_bytes());
        self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The bytes written so far (for a checksum over them, as ZooKeeper's snapshot seals).
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn write_i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    pub fn write_i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    pub fn write_bool(&mut self, value: bool) {
        self.bytes.push(value as u8);
    }

    pub fn write_optional_buffer(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.write_i32(-1),
            Some(bytes) => {
                self.write_i32(bytes.len() as i32);
                self.bytes.extend_from_slice(bytes);
            }
        }
    }

    pub fn write_buffer(&mut self, value: &[u8]) {
        self.write_optional_buffer(Some(value));
    }

    pub fn write_string(&mut self, value: &str) {
        self.write_buffer(value.as_bytes());
    }

    pub fn write_vec<T>(&mut self, items: &[T], mut element: impl FnMut(&mut Self, &T)) {
        self.write_i32(items.len() as i32);
        for item in items {
            element(self, item);
        }
    }

    pub fn write_string_vec(&mut self, items: &[String]) {
        self.write_vec(items, |writer, item| writer.write_string(item));
    }
}

/// A jute record: encodes to and decodes from the wire exactly as zookeeper.jute defines it.
pub trait Record: Sized {
    fn encode(&self, writer: &mut Writer);
    fn decode(reader: &mut Reader<'_>) -> Result<Self, JuteError>;

    fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        self.encode(&mut writer);
        writer.into_bytes()
    }

    /// Decodes a record that must fill `bytes` exactly.
    fn from_bytes(bytes: &[u8]) -> Result<Self, JuteError> {
        let mut reader = Reader::new(bytes);
        let record = Self::decode(&mut reader)?;
        reader.finish()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_are_big_endian() {
        let mut writer = Writer::new();
        writer.write_i32(0x01020304);
        writer.write_i64(-2);
        writer.write_bool(true);
        writer.write_string("ab");
        writer.write_optional_buffer(None);
        assert_eq!(
            writer.into_bytes(),
            vec![
                1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 1, 0, 0, 0, 2, b'a',
                b'b', 0xff, 0xff, 0xff, 0xff
            ]
        );
    }

    #[test]
    fn hostile_lengths_are_rejected_without_allocating() {
        let bytes = [0x7f, 0xff, 0xff, 0xff, 1, 2];
        let mut reader = Reader::new(&bytes);
        assert!(matches!(
            reader.read_buffer(),
            Err(JuteError::Truncated { .. })
        ));
        let mut reader = Reader::new(&bytes);
        assert!(reader.read_string_vec().is_err());
        let bytes = [0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(
            Reader::new(&bytes).read_buffer(),
            Err(JuteError::NegativeLength { length: -2, .. })
        ));
    }

    #[test]
    fn invalid_utf8_decodes_with_replacement_characters() {
        let mut writer = Writer::new();
        writer.write_buffer(b"/a\xff\xfeb");
        let bytes = writer.into_bytes();
        assert_eq!(
            Reader::new(&bytes).read_string().as_deref(),
            Ok("/a\u{fffd}\u{fffd}b")
        );
    }

    #[test]
    fn null_buffer_round_trips_as_none() {
        let mut writer = Writer::new();
        writer.write_optional_buffer(None);
        writer.write_optional_buffer(Some(b""));
        let bytes = writer.into_bytes();
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.read_optional_buffer(), Ok(None));
        assert_eq!(reader.read_optional_buffer(), Ok(Some(vec![])));
        assert!(reader.finish().is_ok());
    }
}
