//! HPACK (RFC 7541) as the load engine needs it: the request's header block encoded once
//! per run, and response header blocks read for the two fields the engine keeps, `:status`
//! and `grpc-status`.
//!
//! The request block uses only the static table and literals "without indexing", so it is
//! the same bytes for every request and the server's table never has to be tracked. The
//! decoder keeps the dynamic table exactly (a later block may refer to any field a server
//! indexed), but Huffman-decodes a string only when it is a name to look at, a value the
//! engine keeps, or a field that goes into the table: a field such as `date` or `server`
//! sent without indexing is skipped over, not decoded.

use std::collections::VecDeque;

use crate::grpc::{StatusError, parse_status_bytes};

/// The dynamic table size this client allows (SETTINGS_HEADER_TABLE_SIZE, the default).
pub(crate) const TABLE_SIZE: usize = 4096;

/// The names of the static table (RFC 7541, Appendix A), index 1 first.
const STATIC_NAMES: [&str; 61] = [
    ":authority",
    ":method",
    ":method",
    ":path",
    ":path",
    ":scheme",
    ":scheme",
    ":status",
    ":status",
    ":status",
    ":status",
    ":status",
    ":status",
    ":status",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "accept",
    "access-control-allow-origin",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-range",
    "content-type",
    "cookie",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "link",
    "location",
    "max-forwards",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "refresh",
    "retry-after",
    "server",
    "set-cookie",
    "strict-transport-security",
    "transfer-encoding",
    "user-agent",
    "vary",
    "via",
    "www-authenticate",
];

/// The values of the static table's `:status` entries, indices 8 to 14.
const STATIC_STATUS: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];

/// Why a header block cannot be read: a COMPRESSION_ERROR, which ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HpackError {
    /// The block ends inside a field.
    #[error("a header block ends inside a field")]
    Truncated,
    /// An integer does not fit.
    #[error("a header block holds an integer too large")]
    Overflow,
    /// An index beyond the static and dynamic tables.
    #[error("a header block refers to table entry {0}, which does not exist")]
    Index(usize),
    /// A Huffman-coded string that does not decode.
    #[error("a header block holds a malformed Huffman-coded string")]
    Huffman,
    /// A dynamic table size above what this client allows.
    #[error("a header block sets the table size to {0}, above the {TABLE_SIZE} allowed")]
    TableSize(usize),
}

/// What the engine keeps of one header block.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    /// `:status`, when present and three digits.
    pub(crate) status: Option<u16>,
    /// Whether a `:status` was present but not a three-digit status.
    pub(crate) bad_status: bool,
    /// `grpc-status`, when present.
    pub(crate) grpc_status: Option<Result<u16, StatusError>>,
}

/// Which of the fields the engine keeps a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Status,
    GrpcStatus,
    Other,
}

impl Kept {
    fn of(name: &[u8]) -> Self {
        match name {
            b":status" => Kept::Status,
            b"grpc-status" => Kept::GrpcStatus,
            _ => Kept::Other,
        }
    }
}

/// One entry of the dynamic table: what the engine keeps of it, and its size.
#[derive(Debug)]
struct Entry {
    kept: Kept,
    /// The value, for a kept name only.
    value: Box<[u8]>,
    /// The name's octets.
    name_len: usize,
    /// Name and value octets plus 32 (RFC 7541, section 4.1).
    size: usize,
}

/// A response header block decoder for one connection.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Newest entry first.
    table: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    /// Room for a decoded name.
    name: Vec<u8>,
    /// Room for a decoded value.
    value: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max_size: TABLE_SIZE,
            name: Vec::with_capacity(64),
            value: Vec::with_capacity(64),
        }
    }
}

/// A string literal's place in the block.
struct Literal {
    huffman: bool,
    start: usize,
    end: usize,
}

impl Decoder {
    /// Reads one whole header block (HEADERS plus any CONTINUATION fragments).
    pub(crate) fn decode(&mut self, block: &[u8]) -> Result<Fields, HpackError> {
        let mut fields = Fields::default();
        let mut at = 0;
        while at < block.len() {
            let first = block[at];
            if first & 0x80 != 0 {
                let index = integer(block, &mut at, 7)?;
                self.indexed(index, &mut fields)?;
            } else if first & 0xc0 == 0x40 {
                let index = integer(block, &mut at, 6)?;
                self.literal(block, &mut at, index, true, &mut fields)?;
            } else if first & 0xe0 == 0x20 {
                let size = integer(block, &mut at, 5)?;
                if size > TABLE_SIZE {
                    return Err(HpackError::TableSize(size));
                }
                self.max_size = size;
                self.evict(0);
            } else {
                // Without indexing (0000) or never indexed (0001): the same to a client.
                let index = integer(block, &mut at, 4)?;
                self.literal(block, &mut at, index, false, &mut fields)?;
            }
        }
        Ok(fields)
    }

    fn indexed(&self, index: usize, fields: &mut Fields) -> Result<(), HpackError> {
        match index {
            0 => Err(HpackError::Index(0)),
            8..=14 => {
                fields.status = Some(STATIC_STATUS[index - 8]);
                Ok(())
            }
            1..=61 => Ok(()),
            _ => {
                let entry = self.table.get(index - 62).ok_or(HpackError::Index(index))?;
                keep(fields, entry.kept, &entry.value);
                Ok(())
            }
        }
    }

    /// A literal field whose name is entry `index` of the table, or a literal when 0.
    fn literal(
        &mut self,
        block: &[u8],
        at: &mut usize,
        index: usize,
        indexing: bool,
        fields: &mut Fields,
    ) -> Result<(), HpackError> {
        let (kept, name_len) = match index {
            0 => {
                let name = literal(block, at)?;
                let name = decoded(block, &name, &mut self.name)?;
                (Kept::of(name), name.len())
            }
            1..=61 => {
                let name = STATIC_NAMES[index - 1];
                (Kept::of(name.as_bytes()), name.len())
            }
            _ => {
                let entry = self.table.get(index - 62).ok_or(HpackError::Index(index))?;
                (entry.kept, entry.name_len)
            }
        };
        let value = literal(block, at)?;
        if !indexing && kept == Kept::Other {
            // Not kept and not entering the table: skipped, never decoded.
            return Ok(());
        }
        let value = decoded(block, &value, &mut self.value)?;
        keep(fields, kept, value);
        if indexing {
            let size = name_len + value.len() + 32;
            let value: Box<[u8]> = if kept == Kept::Other {
                Box::default()
            } else {
                value.into()
            };
            self.insert(Entry {
                kept,
                value,
                name_len,
                size,
            });
        }
        Ok(())
    }

    fn insert(&mut self, entry: Entry) {
        if entry.size > self.max_size {
            // An entry larger than the table empties it and is not added (section 4.4).
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(entry.size);
        self.size += entry.size;
        self.table.push_front(entry);
    }

    /// Evicts the oldest entries until `room` more octets fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.table.pop_back() {
                Some(old) => self.size -= old.size,
                None => break,
            }
        }
    }
}

/// Records a kept field's value.
fn keep(fields: &mut Fields, kept: Kept, value: &[u8]) {
    match kept {
        Kept::Status => match parse_three_digits(value) {
            Some(status) => fields.status = Some(status),
            None => fields.bad_status = true,
        },
        Kept::GrpcStatus => fields.grpc_status = Some(parse_status_bytes(value)),
        Kept::Other => {}
    }
}

fn parse_three_digits(value: &[u8]) -> Option<u16> {
    match value {
        [a, b, c] if value.iter().all(u8::is_ascii_digit) => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// An integer with an `prefix`-bit prefix (RFC 7541, section 5.1), starting at `*at`.
fn integer(block: &[u8], at: &mut usize, prefix: u8) -> Result<usize, HpackError> {
    let mask = (1usize << prefix) - 1;
    let first = *block.get(*at).ok_or(HpackError::Truncated)?;
    *at += 1;
    let mut value = usize::from(first) & mask;
    if value < mask {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let byte = *block.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        if shift > 28 {
            return Err(HpackError::Overflow);
        }
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// A string literal's place (RFC 7541, section 5.2), starting at `*at`, which moves past it.
fn literal(block: &[u8], at: &mut usize) -> Result<Literal, HpackError> {
    let huffman = block.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(block, at, 7)?;
    let start = *at;
    let end = start.checked_add(len).ok_or(HpackError::Overflow)?;
    if end > block.len() {
        return Err(HpackError::Truncated);
    }
    *at = end;
    Ok(Literal {
        huffman,
        start,
        end,
    })
}

/// The literal's octets: as sent, or Huffman-decoded into `room`.
fn decoded<'a>(
    block: &'a [u8],
    literal: &Literal,
    room: &'a mut Vec<u8>,
) -> Result<&'a [u8], HpackError> {
    let raw = &block[literal.start..literal.end];
    if !literal.huffman {
        return Ok(raw);
    }
    room.clear();
    httlib_huffman::decode(raw, room, httlib_huffman::DecoderSpeed::FourBits)
        .map_err(|_| HpackError::Huffman)?;
    Ok(room)
}

/// Encodes a request's header block once: pseudo-header fields first, then `headers`
/// (lower-case names), all from the static table or as literals without indexing.
pub(crate) fn encode_request<'a>(
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    match method {
        "GET" => out.push(0x82),
        "POST" => out.push(0x83),
        other => indexed_name(&mut out, 2, other.as_bytes()),
    }
    match scheme {
        "http" => out.push(0x86),
        "https" => out.push(0x87),
        other => indexed_name(&mut out, 6, other.as_bytes()),
    }
    indexed_name(&mut out, 1, authority.as_bytes());
    if path == "/" {
        out.push(0x84);
    } else {
        indexed_name(&mut out, 4, path.as_bytes());
    }
    for (name, value) in headers {
        out.push(0x00);
        string(&mut out, name.as_bytes());
        string(&mut out, value);
    }
    out
}

/// A literal without indexing whose name is static entry `index`.
fn indexed_name(out: &mut Vec<u8>, index: usize, value: &[u8]) {
    put_integer(out, 0x00, 4, index);
    string(out, value);
}

/// A string literal as sent (no Huffman coding).
fn string(out: &mut Vec<u8>, value: &[u8]) {
    put_integer(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

fn put_integer(out: &mut Vec<u8>, flags: u8, prefix: u8, value: usize) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7541, C.6.1 to C.6.3: three responses with Huffman coding and a 256-octet table.
    #[test]
    fn the_rfc_response_examples_decode_and_evict_as_specified() {
        let mut decoder = Decoder::default();
        decoder.decode(&[0x3f, 0xe1, 0x01]).unwrap(); // table size 256
        let first = hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        );
        let fields = decoder.decode(&first).unwrap();
        assert_eq!(fields.status, Some(302));
        assert_eq!(decoder.size, 222);
        assert_eq!(decoder.table.len(), 4);
        let second = hex("4883 640e ff c1 c0 bf");
        let fields = decoder.decode(&second).unwrap();
        assert_eq!(fields.status, Some(307));
        // The 42-octet :status 307 entry evicted the oldest (:status 302).
        assert_eq!(decoder.size, 222);
        let third = hex(
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        );
        let fields = decoder.decode(&third).unwrap();
        assert_eq!(fields.status, Some(200));
        assert_eq!(decoder.size, 215);
        assert_eq!(decoder.table.len(), 3);
    }

    #[test]
    fn grpc_status_is_read_from_a_literal_and_then_from_the_table() {
        let mut decoder = Decoder::default();
        let mut block = vec![0x40];
        string(&mut block, b"grpc-status");
        string(&mut block, b"14");
        let fields = decoder.decode(&block).unwrap();
        assert_eq!(fields.grpc_status, Some(Ok(14)));
        // Index 62: the newest dynamic entry.
        let fields = decoder.decode(&[0x80 | 62]).unwrap();
        assert_eq!(fields.grpc_status, Some(Ok(14)));
        assert_eq!(fields.status, None);
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let mut decoder = Decoder::default();
        assert_eq!(decoder.decode(&[0x80]), Err(HpackError::Index(0)));
        assert_eq!(decoder.decode(&[0x80 | 70]), Err(HpackError::Index(70)));
        assert_eq!(
            decoder.decode(&[0x04, 0x05, b'a']),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            decoder.decode(&[0x3f, 0xe1, 0x3f]),
            Err(HpackError::TableSize(8192))
        );
        // A status that is not three digits.
        let mut block = vec![0x08];
        string(&mut block, b"2x0");
        assert!(decoder.decode(&block).unwrap().bad_status);
    }

    #[test]
    fn a_request_block_reads_back_as_its_fields() {
        let block = encode_request(
            "PUT",
            "http",
            "localhost:8080",
            "/a?b=1",
            [("user-agent", &b"me"[..])],
        );
        // PUT as a literal with :method's name, :scheme http indexed, then the literals.
        assert_eq!(&block[..5], &[0x02, 0x03, b'P', b'U', b'T']);
        assert_eq!(block[5], 0x86);
        assert_eq!(&block[6..8], &[0x01, 14]);
        let get = encode_request("GET", "https", "h", "/", []);
        assert_eq!(get, vec![0x82, 0x87, 0x01, 0x01, b'h', 0x84]);
        let mut long = Vec::new();
        put_integer(&mut long, 0, 5, 1337);
        assert_eq!(long, vec![0x1f, 0x9a, 0x0a]); // RFC 7541, C.1.2
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }
}
