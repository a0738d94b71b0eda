//! `mqseal_reassembly`: one sealed message delivered in pieces, gathered into a caller buffer.
//!
//! Embedded MQTT stacks hand a large PUBLISH to the application in pieces: ESP-IDF's esp-mqtt
//! (`MQTT_EVENT_DATA` with `current_data_offset` and `total_data_len`), lwIP's MQTT client
//! (`mqtt_incoming_publish_cb` with the total length, then `mqtt_incoming_data_cb` pieces, the
//! last one flagged `MQTT_DATA_FLAG_LAST`). A message can only be opened whole: start a
//! reassembly with the total length, add each piece at its offset, open when complete.

use crate::result::mqseal_result;
use crate::seal::MQSEAL_MAX_SEALED_LEN;
use crate::util::{FfiResult, borrow_mut, bytes, bytes_mut, guard, overlaps};

/// The state of one reassembly into a caller buffer (no allocation; the struct lives in the
/// caller's memory). Set it up with `mqseal_reassembly_start`; read the fields, never write them:
/// once `filled == total_len`, `buf` holds the whole message (pass `buf` and `total_len` to
/// `mqseal_open`). An abandoned reassembly has `buf` NULL.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct mqseal_reassembly {
    /// The caller's buffer.
    pub buf: *mut u8,
    /// Its size in bytes.
    pub cap: usize,
    /// The length of the whole message.
    pub total_len: usize,
    /// How many bytes arrived so far (pieces arrive in order: the next one starts here).
    pub filled: usize,
}

/// Starts reassembling a `total_len`-byte message into `buf` (`cap` bytes; not NULL). Errors:
/// `MQSEAL_ERR_TOO_LARGE` above `MQSEAL_MAX_SEALED_LEN`, `MQSEAL_ERR_BUFFER_TOO_SMALL` if
/// `total_len > cap` (drop the message: nothing can open it). On error `*r` is reset to an
/// abandoned state (`buf` NULL) that refuses every piece.
///
/// # Safety
/// `r` must be valid for writes; `buf` valid for writes of `cap` bytes for as long as the
/// reassembly is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_reassembly_start(
    r: *mut mqseal_reassembly,
    buf: *mut u8,
    cap: usize,
    total_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `r` is valid for writes and not used elsewhere meanwhile.
        let r = unsafe { borrow_mut(r) }?;
        *r = mqseal_reassembly {
            buf: core::ptr::null_mut(),
            cap: 0,
            total_len: 0,
            filled: 0,
        };
        if buf.is_null() {
            return Err(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT);
        }
        if total_len > MQSEAL_MAX_SEALED_LEN {
            return Err(mqseal_result::MQSEAL_ERR_TOO_LARGE);
        }
        if total_len > cap {
            return Err(mqseal_result::MQSEAL_ERR_BUFFER_TOO_SMALL);
        }
        // SAFETY: the caller guarantees `buf` is valid for `cap` bytes (checks NULL and size).
        unsafe { bytes_mut(buf, cap) }?;
        *r = mqseal_reassembly {
            buf,
            cap,
            total_len,
            filled: 0,
        };
        Ok(())
    })
}

/// Adds the piece `data` (`len` bytes) found at `offset` in the message. Pieces must arrive in
/// order without gaps (`offset == r->filled`, as esp-mqtt and lwIP deliver them) and stay inside
/// the announced length; otherwise `MQSEAL_ERR_INVALID_ARGUMENT` and the reassembly is abandoned
/// (every later piece is refused too; start again with the next message). `*complete` (if not
/// NULL) becomes true once the whole message is in `r->buf`. A reassembly that was never started
/// or was abandoned refuses every piece, even an empty one.
///
/// # Safety
/// `r` must be valid and set up by `mqseal_reassembly_start`; `data` valid for reads of `len`
/// bytes and not inside `r->buf`; `complete` NULL or valid for writing a `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_reassembly_add(
    r: *mut mqseal_reassembly,
    offset: usize,
    data: *const u8,
    len: usize,
    complete: *mut bool,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `r` is valid and not used elsewhere meanwhile.
        let r = unsafe { borrow_mut(r) }?;
        let result = add(r, offset, data, len);
        if result.is_err() {
            r.buf = core::ptr::null_mut();
            r.cap = 0;
            r.total_len = 0;
            r.filled = 0;
        }
        result?;
        // SAFETY: the caller guarantees `complete` is NULL or valid for writing a bool.
        if let Some(done) = unsafe { complete.as_mut() } {
            *done = r.filled == r.total_len;
        }
        Ok(())
    })
}

fn add(r: &mut mqseal_reassembly, offset: usize, data: *const u8, len: usize) -> FfiResult<()> {
    if r.buf.is_null() {
        return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
    }
    let end = offset
        .checked_add(len)
        .filter(|end| offset == r.filled && *end <= r.total_len && r.total_len <= r.cap)
        .ok_or(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT)?;
    if overlaps(data, len, r.buf, r.cap) {
        return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: the caller guarantees `data` is valid for `len` bytes.
    let piece = unsafe { bytes(data, len) }?;
    // SAFETY: `mqseal_reassembly_start` checked `buf` for `cap` bytes, and the caller keeps it
    // valid while the reassembly is used; it does not overlap `data` (checked above).
    let buf = unsafe { bytes_mut(r.buf, r.cap) }?;
    buf.get_mut(offset..end)
        .ok_or(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT)?
        .copy_from_slice(piece);
    r.filled = end;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> mqseal_reassembly {
        mqseal_reassembly {
            buf: core::ptr::null_mut(),
            cap: 0,
            total_len: 0,
            filled: 0,
        }
    }

    #[test]
    fn pieces_in_order_make_the_message() {
        let message: Vec<u8> = (0..100u8).collect();
        let mut buf = [0u8; 128];
        let mut r = empty();
        let mut done = true;
        // SAFETY: every pointer is to live local memory of the stated size.
        unsafe {
            assert_eq!(
                mqseal_reassembly_start(&mut r, buf.as_mut_ptr(), buf.len(), message.len()),
                mqseal_result::MQSEAL_OK
            );
            for (offset, piece) in [(0, 0..40), (40, 40..41), (41, 41..41), (41, 41..100)] {
                let part = &message[piece];
                let rc =
                    mqseal_reassembly_add(&mut r, offset, part.as_ptr(), part.len(), &mut done);
                assert_eq!(rc, mqseal_result::MQSEAL_OK);
                assert_eq!(done, offset + part.len() == 100);
            }
        }
        assert_eq!(&buf[..100], &message[..]);
        assert_eq!(r.filled, 100);
    }

    #[test]
    fn gaps_overlaps_overruns_and_small_buffers_are_refused() {
        let mut buf = [0u8; 16];
        let data = [7u8; 16];
        let mut r = empty();
        // SAFETY: every pointer is to live local memory of the stated size.
        unsafe {
            assert_eq!(
                mqseal_reassembly_start(&mut r, buf.as_mut_ptr(), 16, 17),
                mqseal_result::MQSEAL_ERR_BUFFER_TOO_SMALL
            );
            assert_eq!(
                mqseal_reassembly_add(&mut r, 0, data.as_ptr(), 1, core::ptr::null_mut()),
                mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT,
                "a failed start refuses pieces"
            );
            let mut done = false;
            assert_eq!(
                mqseal_reassembly_add(&mut r, 0, data.as_ptr(), 0, &mut done),
                mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT,
                "even an empty one"
            );
            assert!(!done && r.buf.is_null());
            assert_eq!(
                mqseal_reassembly_start(&mut r, buf.as_mut_ptr(), 16, MQSEAL_MAX_SEALED_LEN + 1),
                mqseal_result::MQSEAL_ERR_TOO_LARGE
            );
            let ok = |r: &mut mqseal_reassembly, buf: &mut [u8; 16]| {
                mqseal_reassembly_start(r, buf.as_mut_ptr(), 16, 10)
            };
            assert_eq!(ok(&mut r, &mut buf), mqseal_result::MQSEAL_OK);
            // A gap.
            assert_eq!(
                mqseal_reassembly_add(&mut r, 2, data.as_ptr(), 2, core::ptr::null_mut()),
                mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT
            );
            assert_eq!(r.filled, 0);
            // Abandoned: even the right piece is refused now.
            assert_eq!(
                mqseal_reassembly_add(&mut r, 0, data.as_ptr(), 2, core::ptr::null_mut()),
                mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT
            );
            // Past the announced length; offset overflow.
            assert_eq!(ok(&mut r, &mut buf), mqseal_result::MQSEAL_OK);
            assert_eq!(
                mqseal_reassembly_add(&mut r, 0, data.as_ptr(), 11, core::ptr::null_mut()),
                mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT
            );
            assert_eq!(ok(&mut r, &mut buf), mqseal_result::MQSEAL_OK);
            assert_eq!(
                mqseal_reassembly_add(&mut r, usize::MAX, data.as_ptr(), 2, core::ptr::null_mut()),
                mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT
            );
            // A piece inside the buffer itself.
            assert_eq!(ok(&mut r, &mut buf), mqseal_result::MQSEAL_OK);
            let inside = buf.as_ptr().wrapping_add(8);
            assert_eq!(
                mqseal_reassembly_add(&mut r, 0, inside, 2, core::ptr::null_mut()),
                mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT
            );
            // NULL arguments.
            assert_eq!(
                mqseal_reassembly_start(core::ptr::null_mut(), buf.as_mut_ptr(), 16, 1),
                mqseal_result::MQSEAL_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                mqseal_reassembly_start(&mut r, core::ptr::null_mut(), 16, 1),
                mqseal_result::MQSEAL_ERR_NULL_ARGUMENT
            );
        }
    }
}
