//! The build refuses an interpreter the recorder does not support, with a message saying
//! what to do (build.rs, included here as a module, as the build runs it).

#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

use build_script::{check_interpreter, SUPPORTED_PYTHON};

#[test]
fn supported_cpython_versions_build() {
    for minor in 11..=13 {
        assert_eq!(check_interpreter("CPython", 3, minor), Ok(()), "3.{minor}");
    }
    assert_eq!(SUPPORTED_PYTHON, (3, 11)..=(3, 13));
}

#[test]
fn other_versions_and_implementations_stop_with_a_clear_message() {
    for (major, minor) in [(3, 10), (3, 14), (2, 7), (4, 0)] {
        let e = check_interpreter("CPython", major, minor).unwrap_err();
        assert!(
            e.contains(&format!("targets Python {major}.{minor}"))
                && e.contains("supports CPython 3.11 to 3.13")
                && e.contains("PYO3_PYTHON"),
            "{e}"
        );
    }
    let e = check_interpreter("PyPy", 3, 11).unwrap_err();
    assert!(e.contains("targets PyPy 3.11"), "{e}");
}

#[test]
fn the_interpreter_of_this_build_is_supported() {
    let py = pyo3_build_config::get();
    assert_eq!(
        check_interpreter(
            &py.implementation.to_string(),
            py.version.major,
            py.version.minor
        ),
        Ok(())
    );
}
