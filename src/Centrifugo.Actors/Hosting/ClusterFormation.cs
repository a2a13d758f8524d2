using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Hosting;

/// <summary>
/// How the node joins the cluster (cluster.discovery). Seed nodes: the static list, or joining itself when the list
/// is empty. Kubernetes / config: <see cref="DiscoveryJoiner"/> looks the peers up (pods by label through the
/// Kubernetes API, or a fixed list) and joins them as seed nodes. The two mechanisms are never mixed.
/// </summary>
/// <remarks>
/// Akka.Management's Cluster Bootstrap with Akka.Discovery.KubernetesApi would be the first choice, but neither runs
/// with the packages served here: Akka.Management 1.5.73's HTTP endpoint fails with MissingMethodException
/// (Akka.Http.Shim was built against Ceen.Httpd 0.9.9, only 0.9.10 is served), and so does
/// Akka.Discovery.KubernetesApi 1.5.73's pod lookup (built against KubernetesClient 17, only 19/21 are served).
/// </remarks>
internal static class ClusterFormation
{
    public static AkkaConfigurationBuilder WithClusterFormation(
        this AkkaConfigurationBuilder builder, Configuration.ClusterOptions cluster, ILoggerFactory loggerFactory,
        IPeerLookup? lookup = null)
    {
        if (cluster.Discovery == ClusterDiscovery.SeedNodes)
        {
            return builder.AddStartup((system, _) =>
            {
                if (cluster.SeedNodes.Count == 0)
                {
                    var c = Cluster.Get(system);
                    c.Join(c.SelfAddress);
                }
            });
        }

        lookup ??= cluster.Discovery == ClusterDiscovery.Kubernetes
            ? new KubernetesPodLookup(cluster.Bootstrap, KubernetesApiAccess.InCluster())
            : new ConfigPeerLookup(cluster.Bootstrap.ContactPoints);
        return builder.AddStartup((system, _) => system.ActorOf(
            DiscoveryJoiner.Props(cluster, lookup, loggerFactory.CreateLogger("Centrifugo.Actors.Hosting")), "discovery-joiner"));
    }
}

/// <summary>Where the peers' remoting endpoints come from.</summary>
internal interface IPeerLookup
{
    Task<IReadOnlyList<(string Host, int? Port)>> LookupAsync(CancellationToken cancellationToken);
}

/// <summary>cluster.discovery "config": the fixed host:port list.</summary>
internal sealed class ConfigPeerLookup(IReadOnlyList<string> contactPoints) : IPeerLookup
{
    public Task<IReadOnlyList<(string Host, int? Port)>> LookupAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<(string, int?)>>(contactPoints.Select(p =>
        {
            var colon = p.LastIndexOf(':');
            return (p[..colon].Trim('[', ']'), (int?)int.Parse(p[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        }).ToArray());
}

/// <summary>
/// Looks the peers up every <see cref="BootstrapOptions.Interval"/> until two lookups in a row agree, then calls
/// <see cref="Cluster.JoinSeedNodes"/> once and stops. With at least <see cref="BootstrapOptions.RequiredContactPoints"/>
/// peers the seeds are all of them in address order: Akka's seed-node process joins any peer already in a cluster, and
/// only when none answers does the lowest address (the first seed) form a new one, as Cluster Bootstrap's
/// lowest-address rule does. With fewer, the seeds are the other peers only, so the node joins an existing cluster but
/// never forms one. A node that cannot join within <c>shutdown-after-unsuccessful-join-seed-nodes</c> exits so it is
/// restarted and looks again.
/// </summary>
internal sealed class DiscoveryJoiner : ReceiveActor, IWithTimers
{
    private sealed record Tick;
    private sealed record Found(IReadOnlyList<Address> Peers);
    private sealed record LookupFailed(string Error);

    private readonly Configuration.ClusterOptions _cluster;
    private readonly IPeerLookup _lookup;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private IReadOnlyList<Address> _previous = [];
    private bool _busy;

    public DiscoveryJoiner(Configuration.ClusterOptions cluster, IPeerLookup lookup, ILogger logger)
    {
        _cluster = cluster;
        _lookup = lookup;
        _logger = logger;
        Receive<Tick>(_ => StartLookup());
        Receive<Found>(OnFound);
        Receive<LookupFailed>(f =>
        {
            _busy = false;
            HostingLog.DiscoveryLookupFailed(_logger, BootstrapConfig.Name(_cluster.Discovery), f.Error);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(Configuration.ClusterOptions cluster, IPeerLookup lookup, ILogger logger) =>
        Akka.Actor.Props.Create(() => new DiscoveryJoiner(cluster, lookup, logger));

    protected override void PreStart()
    {
        Self.Tell(new Tick());
        Timers.StartPeriodicTimer("lookup", new Tick(), _cluster.Bootstrap.Interval);
    }

    protected override void PostStop()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }

    private void StartLookup()
    {
        if (_busy)
        {
            return;
        }

        _busy = true;
        var self = Self;
        var timeout = _cluster.Bootstrap.Interval + TimeSpan.FromSeconds(5);
        var token = _stopping.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                using var bounded = CancellationTokenSource.CreateLinkedTokenSource(token);
                bounded.CancelAfter(timeout);
                var found = await _lookup.LookupAsync(bounded.Token);
                self.Tell(new Found(found
                    .Select(t => new Address("akka.tcp", _cluster.SystemName, t.Host, t.Port ?? _cluster.Port))
                    .Distinct()
                    .OrderBy(a => a.Host, StringComparer.Ordinal)
                    .ThenBy(a => a.Port)
                    .ToArray()));
            }
            catch (Exception ex) when (!token.IsCancellationRequested)
            {
                // Keep looking: the API server or RBAC may come right later; the join timeout bounds the wait.
                self.Tell(new LookupFailed(ex is OperationCanceledException ? $"no answer within {timeout.TotalSeconds:0} s" : ex.Message));
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }
        }, CancellationToken.None);
    }

    private void OnFound(Found found)
    {
        _busy = false;
        var cluster = Cluster.Get(Context.System);
        var stable = found.Peers.SequenceEqual(_previous);
        _previous = found.Peers;
        var others = found.Peers.Where(p => p != cluster.SelfAddress).ToArray();
        var enough = found.Peers.Count >= _cluster.Bootstrap.RequiredContactPoints;
        if (!stable || (!enough && others.Length == 0))
        {
            HostingLog.DiscoveryWaiting(_logger, found.Peers.Count, _cluster.Bootstrap.RequiredContactPoints,
                string.Join(", ", found.Peers.Select(p => p.ToString())));
            return;
        }

        // Enough peers: all of them, so the lowest may form a new cluster. Too few: the others only, so this node
        // can join an existing cluster (a restart while some pods are down) but never forms one alone.
        var seeds = enough ? found.Peers : others;
        HostingLog.DiscoveryJoining(_logger, string.Join(", ", seeds.Select(p => p.ToString())), cluster.SelfAddress.ToString(),
            enough && seeds[0] == cluster.SelfAddress);
        cluster.JoinSeedNodes(seeds);
        Context.Stop(Self);
    }
}
