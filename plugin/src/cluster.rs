//! Connecting to the cluster through kube-rs's own kubeconfig handling
//! (exec credential plugins, OIDC, in-cluster), honouring `--kubeconfig`,
//! `--context` and `--request-timeout` as kubectl does.

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::PluginError;

pub struct Cluster {
    pub client: Client,
    pub default_namespace: String,
}

pub async fn connect(
    kubeconfig: Option<&str>,
    context: Option<&str>,
    request_timeout: Option<Duration>,
) -> Result<Cluster, PluginError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let mut config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| PluginError::new(format!("cannot read kubeconfig \"{path}\": {e}")))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| {
                    PluginError::new(format!("kubeconfig \"{path}\" is not usable: {e}"))
                })?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| PluginError::new(format!("cannot load the kubeconfig context: {e}")))?,
        None => Config::infer().await.map_err(|e| {
            PluginError::new(format!(
                "no cluster configured ({e}); set KUBECONFIG or pass --kubeconfig"
            ))
        })?,
    };
    // kube-rs's default read timeout also applies to upgraded attach
    // streams, where it would cut off a quiet capture after a few minutes:
    // only time out reads when the user asked for it.
    config.read_timeout = None;
    if let Some(t) = request_timeout.filter(|t| !t.is_zero()) {
        config.connect_timeout = Some(t);
        config.read_timeout = Some(t);
        config.write_timeout = Some(t);
    }
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config)
        .map_err(|e| PluginError::new(format!("cannot set up the API client: {e}")))?;
    Ok(Cluster {
        client,
        default_namespace,
    })
}
