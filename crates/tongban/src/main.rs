// mimalloc returns freed memory to the OS; glibc's arenas keep argon2's 19 MiB work areas
// resident long after a burst of sign-ins.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tongban::cli::main()
}
