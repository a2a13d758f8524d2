# Multi-stage image of the node and CLI (`centrifugo-actors`). Build from the repository root:
#   docker build -t centrifugo-actors:0.1.0 .
# Not built in this project's CI (no container runtime there); see docs/operations.md.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
# ReadyToRun: the assemblies (ours and Akka's, Npgsql's, ...) carry precompiled code, so a (re)started pod JITs less
# before it is ready and a CLI call starts faster (docs/operations.md). RID: linux-x64 or linux-arm64.
ARG RID=linux-x64
RUN dotnet publish src/Centrifugo.Actors.Host/Centrifugo.Actors.Host.csproj -c Release -r ${RID} --self-contained false \
    -p:PublishReadyToRun=true -o /app --nologo

# ASP.NET Core runtime: the admin endpoint runs on Kestrel. librdkafka's native library comes with the publish output.
FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# `kubectl exec POD -- centrifugo-actors partitions list` finds the CLI on PATH.
ENV PATH="/app:${PATH}" \
    DOTNET_gcServer=0
# Non-root (matches runAsUser in k8s/statefulset.yaml); the root filesystem can be read-only (/tmp is a volume).
USER 10001:10001
EXPOSE 4053 9110
ENTRYPOINT ["/app/centrifugo-actors"]
CMD ["run", "--config", "/etc/centrifugo-actors/config.json"]
