using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Tests.Cluster;

/// <summary>
/// cluster.discovery "kubernetes" against a stand-in Kubernetes API server (HTTPS with its own CA, a bearer token,
/// the pod list endpoint): the node asks for its own namespace (service-account file) and the label selector, keeps only
/// running pods, takes the "remoting" container port, and the joiner waits for required_contact_points.
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class KubernetesDiscoveryTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("k8s-api-").FullName;
    private readonly ConcurrentQueue<(string Path, string Query, string Authorization)> _requests = new();
    private WebApplication _api = null!;
    private int _apiPort;

    public async Task InitializeAsync()
    {
        var (ca, server) = Certificates();
        await File.WriteAllTextAsync(Path.Combine(_dir, "ca.crt"), ca.ExportCertificatePem());
        await File.WriteAllTextAsync(Path.Combine(_dir, "token"), "test-token\n");
        await File.WriteAllTextAsync(Path.Combine(_dir, "namespace"), "prod");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(server)));
        _api = builder.Build();
        _api.MapGet("/api/v1/namespaces/{ns}/pods", (HttpContext ctx) =>
        {
            _requests.Enqueue((ctx.Request.Path.Value!, ctx.Request.QueryString.Value ?? "", ctx.Request.Headers.Authorization.ToString()));
            return Results.Text(PodList, "application/json");
        });
        await _api.StartAsync();
        _apiPort = new Uri(_api.Urls.Single()).Port;
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task The_node_lists_running_pods_by_label_in_its_namespace_and_waits_for_the_required_number()
    {
        var cluster = new Centrifugo.Actors.Configuration.ClusterOptions
        {
            Hostname = "127.0.0.1",
            Port = 0,
            Discovery = ClusterDiscovery.Kubernetes,
            Bootstrap = new BootstrapOptions { RequiredContactPoints = 3, Interval = TimeSpan.FromMilliseconds(200), PodNamespace = "" },
        };
        using var logs = new CapturingLoggerProvider();
        using var loggerFactory = logs.CreateFactory();
        using var host = new HostBuilder().ConfigureServices(services => services.AddAkka("centrifugo-actors", (akka, _) =>
        {
            akka.WithRemoting(AkkaSetup.RemotingFor(cluster))
                .WithClustering()
                .WithClusterFormation(cluster, loggerFactory, new KubernetesPodLookup(cluster.Bootstrap, new KubernetesApiAccess(
                    "127.0.0.1", _apiPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Path.Combine(_dir, "token"), Path.Combine(_dir, "ca.crt"), Path.Combine(_dir, "namespace"))));
        })).Build();
        await host.StartAsync();
        try
        {
            // Two running pods found, neither is this node, three required for a new cluster: the node only asks them
            // to let it join (it never forms a cluster from a partial view).
            await Poll.UntilAsync(() => Task.FromResult(logs.Lines.Any(l => l.Contains("[1102]", StringComparison.Ordinal))),
                "join logged", TimeSpan.FromSeconds(30)).ContinueWith(t => t.IsFaulted
                    ? throw new InvalidOperationException(
                        "no lookups: " + string.Join("\n", logs.Lines.Where(l => l.Contains("iscovery", StringComparison.Ordinal)).Take(5)),
                        t.Exception)
                    : t, TaskScheduler.Default).Unwrap();
            var waiting = logs.Lines.First(l => l.Contains("[1101]", StringComparison.Ordinal));
            Assert.Contains(
                "2 peer(s) found (a new cluster needs 3), waiting for the same answer twice: " +
                "akka.tcp://centrifugo-actors@10.0.0.1:4053, akka.tcp://centrifugo-actors@10.0.0.2:4053",
                waiting, StringComparison.Ordinal);
            var join = logs.Lines.Single(l => l.Contains("[1102]", StringComparison.Ordinal));
            Assert.Contains(
                "joining seed nodes akka.tcp://centrifugo-actors@10.0.0.1:4053, akka.tcp://centrifugo-actors@10.0.0.2:4053 " +
                "(self akka.tcp://centrifugo-actors@127.0.0.1:",
                join, StringComparison.Ordinal);
            Assert.Contains("may form a new cluster: False", join, StringComparison.Ordinal);
            Assert.DoesNotContain(logs.Lines, l => l.Contains("[1103]", StringComparison.Ordinal));

            var (path, query, authorization) = _requests.First();
            Assert.Equal("/api/v1/namespaces/prod/pods", path);
            Assert.Contains("labelSelector=app.kubernetes.io%2Fname%3Dcentrifugo-actors", query, StringComparison.Ordinal);
            Assert.Equal("Bearer test-token", authorization);
            Assert.False(Akka.Cluster.Cluster.Get(host.Services.GetRequiredService<ActorSystem>()).SelfMember.Status
                == Akka.Cluster.MemberStatus.Up);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private static (X509Certificate2 Ca, X509Certificate2 Server) Certificates()
    {
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=test-k8s-ca", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

        using var serverKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var signed = request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(12), [1, 2, 3, 4]);
        var server = X509CertificateLoader.LoadPkcs12(signed.CopyWithPrivateKey(serverKey).Export(X509ContentType.Pkcs12), null);
        return (ca, server);
    }

    // Two running pods, one pending (no IP yet), one being deleted: only the first two are peers.
    private const string PodList = """
    {"kind":"PodList","apiVersion":"v1","metadata":{},"items":[
      {"metadata":{"name":"centrifugo-actors-0","namespace":"prod"},
       "spec":{"containers":[{"name":"centrifugo-actors","ports":[{"name":"remoting","containerPort":4053},{"name":"admin","containerPort":9110}]}]},
       "status":{"phase":"Running","podIP":"10.0.0.2","containerStatuses":[{"name":"centrifugo-actors","state":{"running":{}},"ready":false,"restartCount":0,"image":"x","imageID":"x"}]}},
      {"metadata":{"name":"centrifugo-actors-1","namespace":"prod"},
       "spec":{"containers":[{"name":"centrifugo-actors","ports":[{"name":"remoting","containerPort":4053}]}]},
       "status":{"phase":"Running","podIP":"10.0.0.1"}},
      {"metadata":{"name":"centrifugo-actors-2","namespace":"prod"},
       "spec":{"containers":[{"name":"centrifugo-actors","ports":[{"name":"remoting","containerPort":4053}]}]},
       "status":{"phase":"Pending"}},
      {"metadata":{"name":"centrifugo-actors-3","namespace":"prod","deletionTimestamp":"2026-01-01T00:00:00Z"},
       "spec":{"containers":[{"name":"centrifugo-actors","ports":[{"name":"remoting","containerPort":4053}]}]},
       "status":{"phase":"Running","podIP":"10.0.0.3"}}
    ]}
    """;
}
