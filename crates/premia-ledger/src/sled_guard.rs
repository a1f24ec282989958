//! Reading a store sled may panic on: sled 0.34 panics, rather than returning an error, on some
//! damage (a blob file that is gone, say: "cannot find pid ... in view_for_key"). Where premia
//! reads a store that may be damaged, such a panic is the damage itself, to be named in a
//! sentence, not a crash of premia with a backtrace.

use std::sync::{Arc, Mutex};

/// Runs `read`; a panic inside it becomes `Err` with the panic's message, and nothing is printed
/// for it. The process's panic hook is set aside meanwhile, so this is for a command's own
/// thread doing one read at a time (verify), not for a server's threads.
pub fn guarded<T>(read: impl FnOnce() -> T) -> Result<T, String> {
    let message = Arc::new(Mutex::new(None::<String>));
    let kept = message.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "no message".to_string());
        if let Ok(mut slot) = kept.lock() {
            slot.get_or_insert(text);
        }
    }));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    std::panic::set_hook(previous);
    outcome.map_err(|_| message.lock().ok().and_then(|m| m.clone()).unwrap_or_else(|| "no message".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_a_value_passes_through() {
        assert_eq!(guarded(|| 7), Ok(7));
        let missing = 3;
        let caught = guarded(|| -> u8 { panic!("cannot find pid {missing} in view_for_key") });
        assert_eq!(caught, Err("cannot find pid 3 in view_for_key".to_string()));
        assert_eq!(guarded(|| -> u8 { panic!("static text") }), Err("static text".to_string()));
    }
}
