using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Centrifugo.Actors.Hosting;

/// <summary>
/// PostgreSQL as a failure detector for crashed nodes. Every node holds one session-level advisory lock, keyed by its
/// cluster incarnation (address and uid), on a dedicated connection; every <see cref="CheckInterval"/> it reads from
/// <c>pg_locks</c>, on that same connection, which of the other members' locks are held. A member whose lock this
/// session has seen held and now sees released has lost its database session: PostgreSQL releases a session's locks
/// the moment the backend sees its socket close, so a killed process is noticed in milliseconds, where Akka's
/// failure detector and the split-brain resolver take seconds. That member is downed at once and its partitions move.
/// </summary>
/// <remarks>
/// Only a release seen by one continuous session counts: after this node's own session is lost (a database restart,
/// a network fault) it takes its lock again and starts observing afresh, so a restart of PostgreSQL, which frees every
/// lock at once, downs nobody. A frozen (SIGSTOPped) or GC-paused node keeps its session and its lock: it is left to
/// the failure detector, and its partitions stay fenced by their transaction locks. A node cut from PostgreSQL but
/// not from the cluster keeps its lock until the server notices the broken connection (TCP keepalive); its
/// partitions cannot deliver meanwhile. Not used behind PgBouncer's transaction pooling (a session lock there belongs
/// to a server connection, not to the node): the DSN's pgx PgBouncer settings turn it off.
/// </remarks>
internal sealed class PostgresLiveness : ReceiveActor
{
    public const string Name = "postgres-liveness";

    /// <summary>How often the other members' locks are read: one small query on one connection per node.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromMilliseconds(300);

    /// <summary>The first key of every liveness lock ("CaLv"); the second is the member's <see cref="LockKey"/>.</summary>
    public const int LockNamespace = 0x43614C76;

    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    private const string HeldSql = """
        SELECT objid::int8 FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::int8 = @ns AND objid::int8 = ANY(@keys)
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Akka.Remote.IRemoteActorRefProvider? _remote;

    public PostgresLiveness(NpgsqlDataSource dataSource, ILogger logger)
    {
        _dataSource = dataSource;
        _logger = logger;
    }

    public static Props Props(NpgsqlDataSource dataSource, ILogger logger) =>
        Akka.Actor.Props.Create(() => new PostgresLiveness(dataSource, logger));

    /// <summary>
    /// The data source for the detector (one unpooled session), from the first enabled postgresql consumer by name, or
    /// null when the option is off, there is none, or its DSN says PgBouncer transaction pooling.
    /// </summary>
    public static NpgsqlDataSource? DataSourceFor(NodeOptions options, ILoggerFactory loggerFactory)
    {
        if (!options.Cluster.PostgresLiveness
            || options.Consumers.OfType<PostgresConsumer>().Where(c => c.Enabled).OrderBy(c => c.Name, StringComparer.Ordinal)
                .FirstOrDefault() is not { Postgresql: var pg }
            || PostgresDsn.ToBuilder(pg.Dsn).MaxAutoPrepare == 0)
        {
            return null;
        }
        return Outbox.PostgresDataSources.Create(pg.Dsn, pg.Tls, pooling: false, loggerFactory);
    }

    /// <summary>The second key of a member's liveness lock: 31 bits of SHA-256 over its address and uid.</summary>
    public static int LockKey(UniqueAddress member)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{member.Address}#{member.Uid}"));
        return BitConverter.ToInt32(hash, 0) & 0x7FFFFFFF;
    }

    protected override void PreStart()
    {
        var system = Context.System;
        _ = Task.Run(() => RunAsync(Cluster.Get(system), _stop.Token));
    }

    protected override void PostStop()
    {
        _stop.Cancel();
        _stop.Dispose();
    }

    private async Task RunAsync(Cluster cluster, CancellationToken stop)
    {
        _remote = ((ExtendedActorSystem)cluster.System).Provider as Akka.Remote.IRemoteActorRefProvider;
        var self = cluster.SelfUniqueAddress;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(stop);
                await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock(@ns, @key)", connection))
                {
                    take.Parameters.AddWithValue("ns", LockNamespace);
                    take.Parameters.AddWithValue("key", LockKey(self));
                    await take.ExecuteNonQueryAsync(stop);
                }
                HostingLog.LivenessLockHeld(_logger, self.Address.ToString());
                await ObserveAsync(cluster, self, connection, stop);
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                HostingLog.LivenessSessionLost(_logger, e.Message);
                await Task.Delay(RetryAfter, stop).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Reads the other members' locks until the session fails or the node stops.</summary>
    private async Task ObserveAsync(Cluster cluster, UniqueAddress self, NpgsqlConnection connection, CancellationToken stop)
    {
        var seenHolding = new HashSet<UniqueAddress>();
        var downed = new HashSet<UniqueAddress>();
        await using var read = new NpgsqlCommand(HeldSql, connection);
        var ns = read.Parameters.AddWithValue("ns", (long)LockNamespace);
        var keys = read.Parameters.AddWithValue("keys", Array.Empty<long>());
        while (!stop.IsCancellationRequested)
        {
            var members = cluster.State.Members
                .Where(m => m.UniqueAddress != self && m.Status is not (MemberStatus.Down or MemberStatus.Removed or MemberStatus.Exiting))
                .ToList();
            if (members.Count > 0)
            {
                keys.Value = members.Select(m => (long)LockKey(m.UniqueAddress)).ToArray();
                var held = new HashSet<long>();
                await using (var reader = await read.ExecuteReaderAsync(stop))
                {
                    while (await reader.ReadAsync(stop))
                    {
                        held.Add(reader.GetInt64(0));
                    }
                }
                foreach (var member in members)
                {
                    if (held.Contains(LockKey(member.UniqueAddress)))
                    {
                        seenHolding.Add(member.UniqueAddress);
                    }
                    else if (seenHolding.Contains(member.UniqueAddress) && downed.Add(member.UniqueAddress))
                    {
                        HostingLog.LivenessMemberReleased(_logger, member.Address.ToString(), member.Status.ToString());
                        cluster.Down(member.Address);
                        // A downed member is removed only once it is also unreachable, which the heartbeat failure
                        // detector says seconds later. Quarantining the dead incarnation (its uid; a restarted process
                        // has a new one) marks it terminated at once, as the cluster does for any quarantined member.
                        _remote?.Quarantine(member.Address, member.UniqueAddress.Uid);
                    }
                }
            }
            await Task.Delay(CheckInterval, stop);
        }
    }
}
