//! APR1-MD5 crypt (`$apr1$`), the default scheme of older Apache `htpasswd` files. Weak by
//! today's standards; verified for compatibility, never produced.

use md5::{Digest, Md5};

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const MAGIC: &str = "$apr1$";

/// The full `$apr1$salt$hash` string for `password` and `salt` (at most 8 bytes used).
pub(crate) fn apr1_crypt(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let salt = &salt[..salt.len().min(8)];
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(MAGIC)
        .chain_update(salt);
    for chunk in password.chunks(16) {
        ctx.update(&alternate[..chunk.len()]);
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest: [u8; 16] = ctx.finalize().into();
    // The 1000 rounds exist only to slow guessing down.
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize().into();
    }
    let mut out = Vec::with_capacity(MAGIC.len() + salt.len() + 23);
    out.extend_from_slice(MAGIC.as_bytes());
    out.extend_from_slice(salt);
    out.push(b'$');
    let d = digest;
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push_base64(
            &mut out,
            (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]),
            4,
        );
    }
    push_base64(&mut out, u32::from(d[11]), 2);
    out
}

/// Whether `password` matches the `$apr1$salt$hash` string `hash`.
pub(crate) fn verify(password: &[u8], hash: &str) -> bool {
    let Some(rest) = hash.strip_prefix(MAGIC) else {
        return false;
    };
    let Some((salt, _)) = rest.split_once('$') else {
        return false;
    };
    super::constant_time_eq(&apr1_crypt(password, salt.as_bytes()), hash.as_bytes())
}

fn push_base64(out: &mut Vec<u8>, mut value: u32, chars: usize) {
    for _ in 0..chars {
        out.push(ITOA64[(value & 0x3f) as usize]);
        value >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from `openssl passwd -apr1` and Apache's `htpasswd -m`.
    #[test]
    fn matches_reference_implementations() {
        let cases = [
            (
                "password",
                "abcdefgh",
                "$apr1$abcdefgh$FBwExRW4dCc8aL.OvjpIE1",
            ),
            ("pässwörd", "x.Y/z", "$apr1$x.Y/z$4bMUd16HaC4bGqaST9/Mz1"),
            ("", "12345678", "$apr1$12345678$sHuPAw7VA9xjRbJz7zKV7/"),
            (
                "secret",
                "9PeRwwz.",
                "$apr1$9PeRwwz.$3hQuqRMiINyjg9PspLZlu/",
            ),
        ];
        for (password, salt, expected) in cases {
            assert_eq!(
                apr1_crypt(password.as_bytes(), salt.as_bytes()),
                expected.as_bytes()
            );
            assert!(verify(password.as_bytes(), expected));
            assert!(!verify(b"wrong", expected));
        }
    }

    #[test]
    fn rejects_malformed_hashes() {
        assert!(!verify(b"password", "$apr1$abcdefgh"));
        assert!(!verify(b"password", "$1$abcdefgh$FBwExRW4dCc8aL.OvjpIE1"));
        assert!(!verify(b"password", ""));
    }
}
