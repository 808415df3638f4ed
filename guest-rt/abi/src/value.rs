//! The value encoding of embedded calls: arguments and results of guest and
//! host functions.
//!
//! Every value is a one-byte tag ([`tag`]) and its payload, little-endian:
//! integers and floats as their bytes, `bool` as one byte (0 or 1), `str`
//! and byte strings as a `u32` length and the bytes, a tuple (the argument
//! list of every call) as a one-byte count and its values; `()` is the
//! empty tuple. Decoding checks every tag, length and count, so a wrong
//! type, a short buffer or extra bytes are a [`ValueError`], never a
//! misread. `&str` and `&[u8]` decode as borrows of the buffer: a guest
//! function taking `&[u8]` reads its argument where the host wrote it,
//! without a copy.

use alloc::string::String;
use alloc::vec::Vec;

/// Type tags.
pub mod tag {
    /// `bool`.
    pub const BOOL: u8 = 1;
    /// `i32`.
    pub const I32: u8 = 2;
    /// `u32`.
    pub const U32: u8 = 3;
    /// `i64`.
    pub const I64: u8 = 4;
    /// `u64`.
    pub const U64: u8 = 5;
    /// `f32` (its bits).
    pub const F32: u8 = 6;
    /// `f64` (its bits).
    pub const F64: u8 = 7;
    /// UTF-8 text: `&str`, `String`.
    pub const STR: u8 = 8;
    /// Bytes: `&[u8]`, `Vec<u8>`.
    pub const BYTES: u8 = 9;
    /// A tuple: a count, then the values.
    pub const TUPLE: u8 = 10;
}

/// Why bytes did not decode as the expected value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueError {
    /// The bytes end inside a value.
    Truncated,
    /// A value of another type: tags `want` and `got`.
    WrongType {
        /// The tag expected.
        want: u8,
        /// The tag found.
        got: u8,
    },
    /// Text that is not UTF-8.
    BadUtf8,
    /// A `bool` byte other than 0 or 1.
    BadBool(u8),
    /// A tuple of `got` values where `want` were expected.
    Arity {
        /// Values expected.
        want: u8,
        /// Values found.
        got: u8,
    },
    /// Bytes left after the value.
    Trailing(usize),
}

impl core::fmt::Display for ValueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ValueError::Truncated => write!(f, "the encoding ends inside a value"),
            ValueError::WrongType { want, got } => {
                write!(
                    f,
                    "expected a {}, found a {}",
                    tag_name(*want),
                    tag_name(*got)
                )
            }
            ValueError::BadUtf8 => write!(f, "text is not UTF-8"),
            ValueError::BadBool(b) => write!(f, "bool byte {b} (want 0 or 1)"),
            ValueError::Arity { want, got } => write!(f, "{got} arguments where {want} expected"),
            ValueError::Trailing(n) => write!(f, "{n} bytes after the value"),
        }
    }
}

impl core::error::Error for ValueError {}

/// The Rust type a tag stands for.
pub fn tag_name(t: u8) -> &'static str {
    match t {
        tag::BOOL => "bool",
        tag::I32 => "i32",
        tag::U32 => "u32",
        tag::I64 => "i64",
        tag::U64 => "u64",
        tag::F32 => "f32",
        tag::F64 => "f64",
        tag::STR => "string",
        tag::BYTES => "byte string",
        tag::TUPLE => "tuple",
        _ => "unknown tag",
    }
}

/// Reads values from an encoding, front to back.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        if self.buf.len() < n {
            return Err(ValueError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A `u32` without a tag (lengths).
    pub fn u32_raw(&mut self) -> Result<u32, ValueError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Check the next tag is `want`.
    pub fn expect(&mut self, want: u8) -> Result<(), ValueError> {
        let got = self.array::<1>()?[0];
        if got == want {
            Ok(())
        } else {
            Err(ValueError::WrongType { want, got })
        }
    }

    /// A tuple header with exactly `want` values.
    pub fn tuple(&mut self, want: u8) -> Result<(), ValueError> {
        self.expect(tag::TUPLE)?;
        let got = self.array::<1>()?[0];
        if got == want {
            Ok(())
        } else {
            Err(ValueError::Arity { want, got })
        }
    }

    /// A length-prefixed byte run (after its tag).
    fn run(&mut self) -> Result<&'a [u8], ValueError> {
        let n = self.u32_raw()? as usize;
        self.take(n)
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Nothing may follow.
    pub fn finish(&self) -> Result<(), ValueError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(ValueError::Trailing(n)),
        }
    }
}

/// A value that can be written in the encoding.
pub trait Encode {
    /// Append this value's encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);
}

/// A value that can be read from the encoding, possibly borrowing it.
pub trait Decode<'a>: Sized {
    /// Read one value.
    fn decode(r: &mut Reader<'a>) -> Result<Self, ValueError>;
}

/// Decode exactly one value filling `bytes`.
pub fn from_bytes<'a, T: Decode<'a>>(bytes: &'a [u8]) -> Result<T, ValueError> {
    let mut r = Reader::new(bytes);
    let v = T::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// Encode one value into a new buffer.
pub fn to_bytes<T: Encode + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

/// Append a `u32` length and `bytes` (no tag).
pub fn put_run(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

macro_rules! number {
    ($t:ty, $tag:expr) => {
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.push($tag);
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
        impl<'a> Decode<'a> for $t {
            fn decode(r: &mut Reader<'a>) -> Result<Self, ValueError> {
                r.expect($tag)?;
                Ok(<$t>::from_le_bytes(r.array()?))
            }
        }
    };
}

number!(i32, tag::I32);
number!(u32, tag::U32);
number!(i64, tag::I64);
number!(u64, tag::U64);
number!(f32, tag::F32);
number!(f64, tag::F64);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[tag::BOOL, u8::from(*self)]);
    }
}
impl<'a> Decode<'a> for bool {
    fn decode(r: &mut Reader<'a>) -> Result<Self, ValueError> {
        r.expect(tag::BOOL)?;
        match r.array::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(ValueError::BadBool(b)),
        }
    }
}

impl Encode for str {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::STR);
        put_run(out, self.as_bytes());
    }
}
impl Encode for String {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_str().encode(out);
    }
}
impl<'a> Decode<'a> for &'a str {
    fn decode(r: &mut Reader<'a>) -> Result<Self, ValueError> {
        r.expect(tag::STR)?;
        core::str::from_utf8(r.run()?).map_err(|_| ValueError::BadUtf8)
    }
}
impl<'a> Decode<'a> for String {
    fn decode(r: &mut Reader<'a>) -> Result<Self, ValueError> {
        <&str>::decode(r).map(String::from)
    }
}

impl Encode for [u8] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::BYTES);
        put_run(out, self);
    }
}
impl Encode for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_slice().encode(out);
    }
}
impl<'a> Decode<'a> for &'a [u8] {
    fn decode(r: &mut Reader<'a>) -> Result<Self, ValueError> {
        r.expect(tag::BYTES)?;
        r.run()
    }
}
impl<'a> Decode<'a> for Vec<u8> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, ValueError> {
        <&[u8]>::decode(r).map(<[u8]>::to_vec)
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out);
    }
}

macro_rules! tuple {
    ($n:expr; $($t:ident $i:tt),*) => {
        impl<$($t: Encode),*> Encode for ($($t,)*) {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&[tag::TUPLE, $n]);
                $(self.$i.encode(out);)*
                let _ = &out;
            }
        }
        impl<'a, $($t: Decode<'a>),*> Decode<'a> for ($($t,)*) {
            fn decode(r: &mut Reader<'a>) -> Result<Self, ValueError> {
                r.tuple($n)?;
                Ok(($($t::decode(r)?,)*))
            }
        }
    };
}

tuple!(0;);
tuple!(1; A 0);
tuple!(2; A 0, B 1);
tuple!(3; A 0, B 1, C 2);
tuple!(4; A 0, B 1, C 2, D 3);
tuple!(5; A 0, B 1, C 2, D 3, E 4);
tuple!(6; A 0, B 1, C 2, D 3, E 4, F 5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let v = (7i32, u64::MAX, "héllo", &b"\x00\xff"[..], true, 2.5f64);
        let bytes = to_bytes(&v);
        let back: (i32, u64, &str, &[u8], bool, f64) = from_bytes(&bytes).unwrap();
        assert_eq!(back, v);
        let owned: (i32, u64, String, Vec<u8>, bool, f64) = from_bytes(&bytes).unwrap();
        assert_eq!(owned.2, "héllo");
        assert_eq!(from_bytes::<()>(&to_bytes(&())), Ok(()));
        assert_eq!(from_bytes::<()>(&to_bytes(&())), Ok(()));
    }

    #[test]
    fn borrowed_bytes_point_into_the_buffer() {
        let bytes = to_bytes(&(&[1u8, 2, 3][..],));
        let (b,): (&[u8],) = from_bytes(&bytes).unwrap();
        assert_eq!(
            b.as_ptr(),
            bytes[7..].as_ptr(),
            "tag, count, tag, u32 length"
        );
    }

    #[test]
    fn bad_encodings_are_refused() {
        let b = to_bytes(&(1i32, 2i32));
        assert_eq!(
            from_bytes::<(i32,)>(&b),
            Err(ValueError::Arity { want: 1, got: 2 })
        );
        assert_eq!(
            from_bytes::<(i32, u32)>(&b),
            Err(ValueError::WrongType {
                want: tag::U32,
                got: tag::I32
            })
        );
        assert_eq!(
            from_bytes::<(i32, i32)>(&b[..b.len() - 1]),
            Err(ValueError::Truncated)
        );
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            from_bytes::<(i32, i32)>(&long),
            Err(ValueError::Trailing(1))
        );
        assert_eq!(
            from_bytes::<&str>(&[tag::STR, 2, 0, 0, 0, 0xff, 0xfe]),
            Err(ValueError::BadUtf8)
        );
        // A length past the end, up to u32::MAX, is a short buffer.
        assert_eq!(
            from_bytes::<&[u8]>(&[tag::BYTES, 0xff, 0xff, 0xff, 0xff, 1]),
            Err(ValueError::Truncated)
        );
        assert_eq!(
            from_bytes::<bool>(&[tag::BOOL, 2]),
            Err(ValueError::BadBool(2))
        );
        assert_eq!(from_bytes::<i32>(&[]), Err(ValueError::Truncated));
    }
}
