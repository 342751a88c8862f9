//! The `ferry` binary.

fn main() -> std::process::ExitCode {
    ferry::cli::main()
}
