fn main() -> std::process::ExitCode {
    evertoken::cli::main()
}
