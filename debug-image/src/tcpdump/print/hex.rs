//! `-x`, `-X` and `-A` dumps, byte for byte as tcpdump's print-ascii.c.

use std::fmt::Write as _;

use super::Out;

const PREFIX: &str = "\n\t";

fn graph(b: u8) -> char {
    if (0x21..=0x7e).contains(&b) {
        b as char
    } else {
        '.'
    }
}

/// `-x`: 16 bytes per line in groups of two.
pub fn hex(data: &[u8], out: &mut Out) {
    for (line, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{PREFIX}0x{:04x}: ", line * 16);
        for pair in chunk.chunks(2) {
            match pair {
                [a, b] => {
                    let _ = write!(out, " {a:02x}{b:02x}");
                }
                [a] => {
                    let _ = write!(out, " {a:02x}");
                }
                _ => {}
            }
        }
    }
}

/// `-X`: hex, then the printable characters in a column.
pub fn hex_and_ascii(data: &[u8], out: &mut Out) {
    for (line, chunk) in data.chunks(16).enumerate() {
        let mut hexstuff = String::with_capacity(40);
        let mut ascii = String::with_capacity(16);
        for pair in chunk.chunks(2) {
            match pair {
                [a, b] => {
                    let _ = write!(hexstuff, " {a:02x}{b:02x}");
                }
                [a] => {
                    let _ = write!(hexstuff, " {a:02x}");
                }
                _ => {}
            }
            ascii.extend(pair.iter().map(|b| graph(*b)));
        }
        let _ = write!(out, "{PREFIX}0x{:04x}: {hexstuff:<40}  {ascii}", line * 16);
    }
}

/// `-A`: the bytes as text, unprintable ones as dots, CRs dropped before
/// a line feed.
pub fn ascii(data: &[u8], out: &mut Out) {
    out.push('\n');
    let mut i = 0;
    while i < data.len() {
        let s = data[i];
        i += 1;
        let left = data.len() - i;
        if s == b'\r' {
            if left > 1 && data[i] != b'\n' {
                out.push('.');
            }
        } else if (0x21..=0x7e).contains(&s) || s == b'\t' || s == b' ' || s == b'\n' {
            out.push(s as char);
        } else {
            out.push('.');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_tcpdump() {
        let udp = [
            0x45, 0x00, 0x00, 0x21, 0x29, 0xce, 0x40, 0x00, 0x40, 0x11, 0xbc, 0x93, 0xc6, 0x33,
            0x64, 0x02, 0xc6, 0x33, 0x64, 0x01, 0x9b, 0x17, 0x27, 0x0f, 0x00, 0x0d, 0x54, 0x89,
            0x64, 0x61, 0x74, 0x61, 0x0a,
        ];
        let mut s = String::new();
        hex(&udp, &mut s);
        assert_eq!(
            s,
            "\n\t0x0000:  4500 0021 29ce 4000 4011 bc93 c633 6402\
             \n\t0x0010:  c633 6401 9b17 270f 000d 5489 6461 7461\
             \n\t0x0020:  0a"
        );
        s.clear();
        hex_and_ascii(&udp, &mut s);
        assert_eq!(
            s,
            "\n\t0x0000:  4500 0021 29ce 4000 4011 bc93 c633 6402  E..!).@.@....3d.\
             \n\t0x0010:  c633 6401 9b17 270f 000d 5489 6461 7461  .3d...'...T.data\
             \n\t0x0020:  0a                                       ."
        );
        s.clear();
        ascii(b"ab\r\ncd\r", &mut s);
        assert_eq!(s, "\nab\ncd");
    }
}
