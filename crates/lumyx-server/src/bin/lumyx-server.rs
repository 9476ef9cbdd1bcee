//! The Lumyx API server, configured by the environment: see
//! [`lumyx_server::Config::from_env`].

fn main() -> std::process::ExitCode {
    lumyx_server::run_from_env()
}
