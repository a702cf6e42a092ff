//! Engine calls the fleet tests make by hand, as an operator would with the docker CLI: pull,
//! create, start, remove, push. One copy, so each test only says what it does by hand.

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters as q;
use futures_util::StreamExt;

/// `docker pull IMAGE`.
pub async fn pull(docker: &Docker, image: &str) {
    let opts = q::CreateImageOptionsBuilder::new()
        .from_image(image)
        .build();
    let mut pull = docker.create_image(Some(opts), None, None);
    while let Some(r) = pull.next().await {
        r.unwrap();
    }
}

/// `docker create [--name NAME] …`; returns the container's id.
pub async fn create(docker: &Docker, name: Option<&str>, body: ContainerCreateBody) -> String {
    let opts = name.map(|n| q::CreateContainerOptionsBuilder::new().name(n).build());
    docker.create_container(opts, body).await.unwrap().id
}

/// `docker create --name NAME IMAGE`, nothing else set; returns the container's id.
pub async fn create_plain(docker: &Docker, name: &str, image: &str) -> String {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        ..Default::default()
    };
    create(docker, Some(name), body).await
}

/// `docker start ID`.
pub async fn start(docker: &Docker, id: &str) {
    docker
        .start_container(id, None::<q::StartContainerOptions>)
        .await
        .unwrap();
}

/// `docker rm -f NAME`, which must succeed.
pub async fn remove(docker: &Docker, name: &str) {
    let opts = q::RemoveContainerOptionsBuilder::new().force(true).build();
    docker.remove_container(name, Some(opts)).await.unwrap();
}

/// `docker push REPO:TAG`, which must succeed.
pub async fn push(docker: &Docker, repo: &str, tag: &str) {
    let opts = q::PushImageOptionsBuilder::new().tag(tag).build();
    let mut push = docker.push_image(
        repo,
        Some(opts),
        Some(bollard::auth::DockerCredentials::default()),
    );
    while let Some(r) = push.next().await {
        let info = r.unwrap();
        assert!(info.error_detail.is_none(), "push failed: {info:?}");
    }
}
