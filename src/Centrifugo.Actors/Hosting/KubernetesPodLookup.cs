using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Hosting;

/// <summary>How a pod reaches the Kubernetes API: the service-account files and the API server address.</summary>
internal sealed record KubernetesApiAccess(string Host, string Port, string TokenPath, string CaPath, string NamespacePath)
{
    private const string ServiceAccount = "/var/run/secrets/kubernetes.io/serviceaccount";

    /// <summary>What the kubelet gives every pod that mounts its service-account token.</summary>
    public static KubernetesApiAccess InCluster() => new(
        Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST") ?? "",
        Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_PORT") ?? "443",
        ServiceAccount + "/token", ServiceAccount + "/ca.crt", ServiceAccount + "/namespace");
}

/// <summary>
/// cluster.discovery "kubernetes": <c>GET /api/v1/namespaces/NS/pods?labelSelector=…</c> with the pod's
/// service-account token (re-read on every lookup: projected tokens rotate), trusting only the cluster CA. Peers are
/// the pods that are Running, have an IP and are not being deleted, at their container port named
/// <see cref="BootstrapOptions.PortName"/>. Needs RBAC <c>get/list/watch</c> on pods (k8s/rbac.yaml).
/// </summary>
internal sealed class KubernetesPodLookup(BootstrapOptions options, KubernetesApiAccess access) : IPeerLookup
{
    public async Task<IReadOnlyList<(string Host, int? Port)>> LookupAsync(CancellationToken cancellationToken)
    {
        if (access.Host.Length == 0)
        {
            throw new InvalidOperationException("KUBERNETES_SERVICE_HOST is not set: not running in a Kubernetes pod");
        }

        var ns = options.PodNamespace.Length > 0 ? options.PodNamespace
            : File.Exists(access.NamespacePath) ? (await File.ReadAllTextAsync(access.NamespacePath, cancellationToken)).Trim()
            : "default";
        var token = File.Exists(access.TokenPath)
            ? (await File.ReadAllTextAsync(access.TokenPath, cancellationToken)).Trim()
            : throw new InvalidOperationException(
                $"no service-account token at {access.TokenPath} (automountServiceAccountToken must be true)");
        var selector = options.PodLabelSelector.Replace("{0}", options.ServiceName, StringComparison.Ordinal);
        var host = access.Host.Contains(':', StringComparison.Ordinal) ? $"[{access.Host}]" : access.Host;
        var uri = new Uri($"https://{host}:{access.Port}/api/v1/namespaces/{Uri.EscapeDataString(ns)}" +
            $"/pods?labelSelector={Uri.EscapeDataString(selector)}");

        using var handler = new SocketsHttpHandler { SslOptions = TrustOnly(access.CaPath) };
        using var http = new HttpClient(handler);
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            // 403 = the RBAC Role/RoleBinding is missing; never echo the token.
            throw new InvalidOperationException(
                $"listing pods in namespace {ns} with selector {selector} returned HTTP {(int)response.StatusCode}");
        }

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var json = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
        return Peers(json.RootElement, options.PortName);
    }

    internal static IReadOnlyList<(string Host, int? Port)> Peers(JsonElement podList, string portName)
    {
        var peers = new List<(string, int?)>();
        if (!podList.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Array)
        {
            return peers;
        }

        foreach (var pod in items.EnumerateArray())
        {
            if (pod.TryGetProperty("metadata", out var meta) && meta.TryGetProperty("deletionTimestamp", out var deleting)
                && deleting.ValueKind != JsonValueKind.Null)
            {
                continue;
            }
            if (!pod.TryGetProperty("status", out var status)
                || !status.TryGetProperty("phase", out var phase) || phase.GetString() != "Running"
                || !status.TryGetProperty("podIP", out var ip) || string.IsNullOrEmpty(ip.GetString()))
            {
                continue;
            }

            int? port = null;
            if (pod.TryGetProperty("spec", out var spec) && spec.TryGetProperty("containers", out var containers))
            {
                port = containers.EnumerateArray()
                    .SelectMany(c => c.TryGetProperty("ports", out var ports) ? ports.EnumerateArray() : Enumerable.Empty<JsonElement>())
                    .Where(p =>
                        p.TryGetProperty("name", out var n) && n.GetString() == portName && p.TryGetProperty("containerPort", out _))
                    .Select(p => (int?)p.GetProperty("containerPort").GetInt32())
                    .FirstOrDefault();
            }
            peers.Add((ip.GetString()!, port));
        }
        return peers;
    }

    private static SslClientAuthenticationOptions TrustOnly(string caPath)
    {
        if (!File.Exists(caPath))
        {
            return new SslClientAuthenticationOptions();
        }

        var trust = new X509Certificate2Collection();
        trust.ImportFromPemFile(caPath);
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.AddRange(trust);
        return new SslClientAuthenticationOptions { CertificateChainPolicy = policy };
    }
}
