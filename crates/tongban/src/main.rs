fn main() -> std::process::ExitCode {
    tongban::cli::main()
}
