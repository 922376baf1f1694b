//! The CUDA driver asked directly (dlopen libcuda), without a backend: how many GPUs there
//! are (the engine's device probe, so that a machine without one gets an answer instead of
//! a panic from deep inside a backend) and what they are called (the kernel cache's folder).

type CuInit = unsafe extern "C" fn(u32) -> i32;
type CuDeviceGetCount = unsafe extern "C" fn(*mut i32) -> i32;
type CuDeviceGet = unsafe extern "C" fn(*mut i32, i32) -> i32;
type CuDeviceGetName = unsafe extern "C" fn(*mut std::ffi::c_char, i32, i32) -> i32;

/// The driver library, initialised (`cuInit(0)` returned 0).
struct Driver {
    lib: libloading::Library,
}

impl Driver {
    /// Loads and initialises the driver; the message says what is missing.
    fn open() -> Result<Driver, String> {
        // SAFETY: loading the system CUDA driver library runs its initialisers, which is
        // what any CUDA program does; cuInit gets its only valid flag value.
        unsafe {
            let lib = libloading::Library::new("libcuda.so.1")
                .or_else(|_| libloading::Library::new("libcuda.so"))
                .map_err(|_| "no CUDA driver (libcuda.so.1 not found)".to_string())?;
            let init: libloading::Symbol<CuInit> = lib
                .get(b"cuInit\0")
                .map_err(|e| format!("libcuda has no cuInit: {e}"))?;
            let rc = init(0);
            if rc != 0 {
                return Err(init_failed(rc));
            }
            Ok(Driver { lib })
        }
    }

    fn symbol<T>(&self, name: &[u8]) -> Result<libloading::Symbol<'_, T>, String> {
        // SAFETY: each caller names the C function whose signature `T` is.
        unsafe { self.lib.get(name) }.map_err(|e| {
            let name = String::from_utf8_lossy(&name[..name.len() - 1]).into_owned();
            format!("libcuda has no {name}: {e}")
        })
    }
}

fn init_failed(rc: i32) -> String {
    format!("cuInit failed with CUDA error {rc}")
}

/// What `cuDeviceGetCount` said: its return code and the count it wrote.
fn count_answer(rc: i32, n: i32) -> Result<usize, String> {
    if rc != 0 || n <= 0 {
        return Err(format!("no CUDA devices (error {rc}, count {n})"));
    }
    Ok(n as usize)
}

/// How many CUDA devices the driver sees; why none, otherwise.
pub fn device_count() -> Result<usize, String> {
    let driver = Driver::open()?;
    let count = driver.symbol::<CuDeviceGetCount>(b"cuDeviceGetCount\0")?;
    let mut n = 0i32;
    // SAFETY: a valid pointer to the count.
    let rc = unsafe { count(&mut n) };
    count_answer(rc, n)
}

/// Device `ordinal`'s name (e.g. "NVIDIA H200"), as the driver reports it.
pub fn device_name(ordinal: i32) -> Option<String> {
    let driver = Driver::open().ok()?;
    let get = driver.symbol::<CuDeviceGet>(b"cuDeviceGet\0").ok()?;
    let name = driver
        .symbol::<CuDeviceGetName>(b"cuDeviceGetName\0")
        .ok()?;
    let mut dev = 0i32;
    let mut buf = [0 as std::ffi::c_char; 256];
    // SAFETY: valid pointers, and a buffer of the length the call is told.
    unsafe {
        if get(&mut dev, ordinal) != 0 || name(buf.as_mut_ptr(), buf.len() as i32, dev) != 0 {
            return None;
        }
        let s = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .trim()
            .to_string();
        (!s.is_empty()).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_answers_are_read_right() {
        assert_eq!(count_answer(0, 2), Ok(2));
        assert_eq!(init_failed(100), "cuInit failed with CUDA error 100");
        assert_eq!(
            count_answer(0, 0),
            Err("no CUDA devices (error 0, count 0)".into())
        );
        assert_eq!(
            count_answer(3, 1),
            Err("no CUDA devices (error 3, count 1)".into())
        );
    }

    #[test]
    fn a_machine_without_a_driver_gets_an_answer() {
        // This box has no GPU; on one with a driver the count is positive and device 0 has
        // a name. Either way no panic.
        match device_count() {
            Ok(n) => {
                assert!(n > 0);
                assert!(device_name(0).is_some());
            }
            Err(why) => {
                assert!(why.contains("CUDA") || why.contains("cuInit"), "{why}");
                assert_eq!(device_name(0), None);
            }
        }
    }
}
