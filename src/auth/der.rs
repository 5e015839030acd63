//! [pure] The few DER (X.690) reading steps the x509 identities and the JKS reader need:
//! one tag-length-value at a time, definite lengths only, every length checked against the
//! bytes that are there. Not a general ASN.1 library; the certificate itself has already been
//! parsed and verified by webpki when these run.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DerError {
    #[error("DER: truncated at byte {0}")]
    Truncated(usize),
    #[error("DER: expected tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("DER: unsupported length form")]
    BadLength,
}

/// A parsed element: its tag byte, its content, and the whole encoding (tag, length, content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub encoded: &'a [u8],
}

/// Reads elements one after another from a byte slice.
#[derive(Debug, Clone)]
pub struct DerReader<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> DerReader<'a> {
    pub fn new(input: &'a [u8]) -> DerReader<'a> {
        DerReader { input, offset: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.offset >= self.input.len()
    }

    /// The tag of the next element, without reading it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.input.get(self.offset).copied()
    }

    /// The next element, whatever its tag. Only single-byte tags occur in the structures read
    /// here (universal and context-specific tags below 31).
    pub fn next_element(&mut self) -> Result<Element<'a>, DerError> {
        let start = self.offset;
        let rest = &self.input[start..];
        let tag = *rest.first().ok_or(DerError::Truncated(start))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::BadLength);
        }
        let first = *rest.get(1).ok_or(DerError::Truncated(start + 1))?;
        let (length, header) = if first < 0x80 {
            (first as usize, 2)
        } else {
            // Long form: 1 to 4 length bytes (nothing read here is anywhere near 4 GiB).
            let count = (first & 0x7f) as usize;
            if count == 0 || count > 4 {
                return Err(DerError::BadLength);
            }
            let bytes = rest
                .get(2..2 + count)
                .ok_or(DerError::Truncated(start + 2))?;
            let length = bytes
                .iter()
                .fold(0usize, |length, byte| (length << 8) | *byte as usize);
            (length, 2 + count)
        };
        let end = header
            .checked_add(length)
            .filter(|end| *end <= rest.len())
            .ok_or(DerError::Truncated(start + header))?;
        self.offset = start + end;
        Ok(Element {
            tag,
            content: &rest[header..end],
            encoded: &rest[..end],
        })
    }

    /// The next element, which must have `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<Element<'a>, DerError> {
        let element = self.next_element()?;
        if element.tag != tag {
            return Err(DerError::UnexpectedTag {
                expected: tag,
                found: element.tag,
            });
        }
        Ok(element)
    }
}

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub const TAG_SEQUENCE: u8 = 0x30;
pub const TAG_SET: u8 = 0x31;

/// An OBJECT IDENTIFIER's content in dotted decimal form (X.690 8.19).
pub fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    let mut pending = false;
    for byte in content {
        if value > (u64::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        pending = true;
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                // The first subidentifier holds the first two arcs.
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
            pending = false;
        }
    }
    if pending || arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(|arc| arc.to_string())
            .collect::<Vec<_>>()
            .join("."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths_are_read_and_bounded() {
        let short = [0x04, 0x02, 0xaa, 0xbb];
        let element = DerReader::new(&short).next_element().unwrap();
        assert_eq!(element.content, &[0xaa, 0xbb]);
        assert_eq!(element.encoded, &short);
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        assert_eq!(
            DerReader::new(&long).next_element().unwrap().content.len(),
            0x80
        );
        // A length past the end, an indefinite length and a truncated header are errors.
        assert!(DerReader::new(&[0x04, 0x05, 0x00]).next_element().is_err());
        assert!(DerReader::new(&[0x30, 0x80, 0x00, 0x00])
            .next_element()
            .is_err());
        assert!(DerReader::new(&[0x30]).next_element().is_err());
        assert!(DerReader::new(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff])
            .next_element()
            .is_err());
    }

    #[test]
    fn oids_print_in_dotted_decimal() {
        // 2.5.4.3 (commonName) and 1.2.840.113549.1.9.1 (emailAddress).
        assert_eq!(
            oid_to_string(&[0x55, 0x04, 0x03]).as_deref(),
            Some("2.5.4.3")
        );
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(
            oid_to_string(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]).as_deref(),
            Some("0.9.2342.19200300.100.1.25")
        );
        assert_eq!(oid_to_string(&[0x86]), None);
        assert_eq!(oid_to_string(&[]), None);
    }
}
