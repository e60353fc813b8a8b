//! The plugin's command line: `kubectl netdiag [flags] TARGET TOOL [ARGS...]`.
//!
//! Everything after TOOL belongs to the tool and is passed on unchanged.
//! `--help`, `TOOL --help`, `version` (offline part) and `completion` are
//! answered before any kubeconfig or cluster is touched.

use std::ffi::OsString;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::tools::{self, Profile};

#[derive(Parser, Debug)]
#[command(
    name = "kubectl netdiag",
    bin_name = "kubectl netdiag",
    version,
    about = "Network diagnostics inside any pod: ss, nstat, dig, resolve, nc, paping, tcpdump",
    long_about = "Runs a tiny static agent as an ephemeral container in the target pod's network \
                  namespace and streams the tool's output back. The pod's own image needs no tools.",
    after_help = "Examples:\n  \
        kubectl netdiag web-7d9f ss -tlnp\n  \
        kubectl netdiag -n shop deploy/api dig kubernetes.default\n  \
        kubectl netdiag web-7d9f nc -vz 198.51.100.7 5432\n  \
        kubectl netdiag web-7d9f tcpdump -i any -w - port 53 | wireshark -k -i -\n\n\
        Other commands: kubectl netdiag version | kubectl netdiag completion bash|zsh|fish\n\
        Tools: run 'kubectl netdiag TOOL --help' for a tool's synopsis."
)]
pub struct Args {
    /// Namespace of the target (default: the kubeconfig context's)
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Target container whose process namespace to share (default: the
    /// kubectl.kubernetes.io/default-container annotation, else the first)
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Kubeconfig context to use
    #[arg(long)]
    pub context: Option<String>,
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long)]
    pub kubeconfig: Option<String>,
    /// Timeout of each API request, e.g. 10s, 1m (0: none)
    #[arg(long, value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
    /// Agent image (for private or air-gapped registries)
    #[arg(long, env = "NETDIAG_IMAGE")]
    pub image: Option<String>,
    /// Image pull policy of the agent container: Always, IfNotPresent, Never
    #[arg(long, default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub image_pull_policy: String,
    /// Security profile: restricted, netadmin, general (default: the least the tool needs)
    #[arg(long, value_parser = Profile::parse)]
    pub profile: Option<Profile>,
    /// Time allowed for the agent to start, e.g. 60s
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Output format, passed on to the tool (-o json)
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<String>,
    /// Pod name, or deploy/NAME, sts/NAME, ds/NAME, rs/NAME, svc/NAME
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// The tool to run: ss, nstat, dig, resolve, nc, paping, tcpdump
    #[arg(value_name = "TOOL")]
    pub tool: String,
    /// Arguments for the tool, passed unchanged
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub tool_args: Vec<String>,
}

/// What the command line asks for.
pub enum Invocation {
    Run(Box<Args>),
    Version {
        kubeconfig: Option<String>,
        context: Option<String>,
    },
    Completion(clap_complete::Shell),
    /// Already printed (help, tool synopsis): exit 0.
    Done,
}

/// Parses the arguments; `Err` is the one-line message for bad input.
pub fn parse(argv: Vec<OsString>) -> Result<Invocation, String> {
    let words: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let positional: Vec<&str> = first_positionals(&words);

    match positional.as_slice() {
        ["version", ..] if positional.len() == 1 => {
            let a = parse_partial(&words);
            return Ok(Invocation::Version {
                kubeconfig: a.0,
                context: a.1,
            });
        }
        ["completion", rest @ ..] => {
            let shell = rest.first().copied().unwrap_or("");
            let shell: clap_complete::Shell = shell.parse().map_err(|_| {
                format!("unknown shell \"{shell}\" for completion; expected bash, zsh, fish, elvish or powershell")
            })?;
            return Ok(Invocation::Completion(shell));
        }
        [tool, ..] if tools::find(tool).is_some() && wants_help(&words) => {
            let t = tools::find(tool).expect("checked");
            println!(
                "{}: {}\n\nUsage: kubectl netdiag [flags] TARGET {}\n",
                t.name, t.about, t.synopsis
            );
            println!(
                "Run 'kubectl netdiag TARGET {} --help' for the agent's full help.",
                t.name
            );
            return Ok(Invocation::Done);
        }
        _ => {}
    }

    match Args::try_parse_from(&argv) {
        Ok(mut args) => {
            if tools::find(&args.tool).is_none() {
                return Err(format!(
                    "unknown tool \"{}\"; expected one of: {} (see 'kubectl netdiag --help')",
                    args.tool,
                    tools::TOOLS
                        .iter()
                        .map(|t| t.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some(fmt) = args.output.take() {
                args.tool_args.splice(0..0, ["-o".to_string(), fmt]);
            }
            Ok(Invocation::Run(Box::new(args)))
        }
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                print!("{}", e.render());
                Ok(Invocation::Done)
            }
            _ => {
                let text = e.render().to_string();
                let first = text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid arguments");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                Err(format!("{first}; see 'kubectl netdiag --help'"))
            }
        },
    }
}

/// Writes shell completion for the plugin.
pub fn print_completion(shell: clap_complete::Shell) {
    let mut cmd = Args::command();
    clap_complete::generate(shell, &mut cmd, "kubectl-netdiag", &mut std::io::stdout());
}

/// Flags of ours that take a value (their value is not a positional).
const VALUE_FLAGS: &[&str] = &[
    "-n",
    "--namespace",
    "-c",
    "--container",
    "--context",
    "--kubeconfig",
    "--request-timeout",
    "--image",
    "--image-pull-policy",
    "--profile",
    "--timeout",
    "-o",
    "--output",
];

/// The positional words before the tool's own arguments begin.
fn first_positionals(words: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut skip = false;
    for w in words {
        if skip {
            skip = false;
            continue;
        }
        if VALUE_FLAGS.contains(&w.as_str()) {
            skip = true;
            continue;
        }
        if w.starts_with('-') {
            continue;
        }
        out.push(w.as_str());
        if out.len() == 2 {
            break;
        }
    }
    out
}

fn wants_help(words: &[String]) -> bool {
    words.iter().any(|w| w == "--help" || w == "-h")
}

/// `--kubeconfig` and `--context` for `version`, without requiring TARGET.
fn parse_partial(words: &[String]) -> (Option<String>, Option<String>) {
    let mut kubeconfig = None;
    let mut context = None;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if let Some(v) = w.strip_prefix("--kubeconfig=") {
            kubeconfig = Some(v.to_owned());
        } else if w == "--kubeconfig" {
            kubeconfig = it.next().cloned();
        } else if let Some(v) = w.strip_prefix("--context=") {
            context = Some(v.to_owned());
        } else if w == "--context" {
            context = it.next().cloned();
        }
    }
    (kubeconfig, context)
}

/// `30s`, `2m`, `1h`, `500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{s}\" is not a duration; write e.g. 30s, 2m or 500ms"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("\"{s}\" has an unknown unit; use ms, s, m or h")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, String> {
        let mut v: Vec<OsString> = vec!["kubectl-netdiag".into()];
        v.extend(args.iter().map(OsString::from));
        parse(v)
    }

    #[test]
    fn tool_arguments_pass_unchanged() {
        let Ok(Invocation::Run(a)) = p(&[
            "-n",
            "shop",
            "deploy/api",
            "ss",
            "-tlnp",
            "state",
            "listening",
        ]) else {
            panic!("expected a run");
        };
        assert_eq!(a.namespace.as_deref(), Some("shop"));
        assert_eq!(a.target, "deploy/api");
        assert_eq!(a.tool, "ss");
        assert_eq!(a.tool_args, ["-tlnp", "state", "listening"]);
    }

    #[test]
    fn output_flag_goes_to_the_tool() {
        let Ok(Invocation::Run(a)) = p(&["-o", "json", "web", "ss", "-tln"]) else {
            panic!()
        };
        assert_eq!(a.tool_args, ["-o", "json", "-tln"]);
    }

    #[test]
    fn bad_input_is_one_line() {
        let e = p(&["web", "sss"]).err().unwrap();
        assert!(e.contains("unknown tool \"sss\""), "{e}");
        let e = p(&["--profile", "root", "web", "ss"]).err().unwrap();
        assert!(e.contains("unknown profile"), "{e}");
        assert!(!e.contains('\n'));
        let e = p(&["--timeout", "soon", "web", "ss"]).err().unwrap();
        assert!(e.contains("\"soon\""), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
    }
}
