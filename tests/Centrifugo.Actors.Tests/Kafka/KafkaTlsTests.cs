using System.Globalization;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Microsoft.Extensions.Logging;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

/// <summary>TLS end to end: the mock broker behind stunnel, its TLS port advertised in metadata.</summary>
public sealed class KafkaTlsTests : IDisposable
{
    private static readonly KafkaSettings Fast = new()
    {
        CommitInterval = TimeSpan.FromMilliseconds(200),
        CommittedLookupTimeout = TimeSpan.FromSeconds(2),
        MetadataTimeout = TimeSpan.FromSeconds(2),
    };

    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create(brokers: 1);
    private readonly CapturingLoggerProvider _logs = new();
    private readonly ILoggerFactory _loggerFactory;
    private readonly string _topic = Unique("tls");
    private StunnelTlsProxy? _proxy;

    public KafkaTlsTests()
    {
        _loggerFactory = _logs.CreateFactory();
        _cluster.CreateTopic(_topic, 1);
    }

    public void Dispose()
    {
        _proxy?.Dispose();
        _loggerFactory.Dispose();
        _cluster.Dispose();
    }

    /// <summary>Produces in plaintext, then puts the TLS proxy in front and advertises it.</summary>
    private async Task<StunnelTlsProxy> ProxiedAsync(bool requireClientCertificate = false)
    {
        using (var producer = Producer(_cluster.Bootstrap))
        {
            await ProduceAsync(producer, _topic, 0, 20);
        }

        var brokerPort = int.Parse(_cluster.Bootstrap.Split(':')[^1], CultureInfo.InvariantCulture);
        _proxy = StunnelTlsProxy.Start([brokerPort], requireClientCertificate);
        _cluster.SetAdvertisedHostPort(1, "127.0.0.1", _proxy.Ports[0]);
        return _proxy;
    }

    private KafkaConsumerOptions Options(StunnelTlsProxy proxy, TlsOptions tls) => new()
    {
        Brokers = [$"127.0.0.1:{proxy.Ports[0]}"],
        Topics = [_topic],
        ConsumerGroup = Unique("g"),
        FetchMaxWait = TimeSpan.FromMilliseconds(50),
        Tls = tls,
    };

    private async Task<List<KafkaRecord>> ReadAllAsync(KafkaConsumerOptions options)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var hub = new KafkaConsumerHub("tls", options, _loggerFactory, Fast);
        await using var lease = await hub.AcquireAsync(_topic, 0, deadline.Token);
        var records = new List<KafkaRecord>();
        while (records.Count < 20)
        {
            using var batch = await lease.ReadBatchAsync(100, deadline.Token);
            records.AddRange(batch.ToRecords());
        }

        return records;
    }

    private async Task AssertHandshakeFailsAsync(KafkaConsumerOptions options, string expectedReason)
    {
        await using var hub = new KafkaConsumerHub("tls", options, _loggerFactory, Fast);
        using var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        // The committed-offset lookup is the first broker call; it retries until cancelled and no record can arrive.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => hub.AcquireAsync(_topic, 0, giveUp.Token));
        try
        {
            await WaitUntilAsync(
                () => _logs.Lines.Any(l => l.Contains(expectedReason, StringComparison.Ordinal)),
                $"'{expectedReason}' to be logged");
        }
        catch (TimeoutException e)
        {
            var logged = string.Join('\n', _logs.Lines
                .Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Warning", StringComparison.Ordinal)).Take(20));
            throw new TimeoutException(e.Message + "; errors and warnings logged:\n" + logged, e);
        }
    }

    public enum PemForm { Path, Raw, Base64 }

    private static string Pem(string path, PemForm form) => form switch
    {
        PemForm.Path => path,
        PemForm.Raw => File.ReadAllText(path),
        _ => Convert.ToBase64String(File.ReadAllBytes(path)),
    };

    [Theory]
    [InlineData(PemForm.Path)]
    [InlineData(PemForm.Raw)]
    [InlineData(PemForm.Base64)]
    public async Task Records_arrive_over_tls_verified_against_server_ca_pem_in_each_form(PemForm form)
    {
        var proxy = await ProxiedAsync();

        var records = await ReadAllAsync(Options(proxy, new TlsOptions { Enabled = true, ServerCaPem = Pem(proxy.CaPath, form) }));

        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"v{i}"), records.Select(r => Text(r.Value)));
    }

    [Fact]
    public async Task A_broker_certificate_from_another_ca_is_rejected_and_logged()
    {
        var proxy = await ProxiedAsync();

        await AssertHandshakeFailsAsync(
            Options(proxy, new TlsOptions { Enabled = true, ServerCaPem = proxy.WrongCaPath }), "certificate verify failed");
    }

    [Fact]
    public async Task Insecure_skip_verify_accepts_a_broker_certificate_from_another_ca()
    {
        var proxy = await ProxiedAsync();

        var records = await ReadAllAsync(
            Options(proxy, new TlsOptions { Enabled = true, ServerCaPem = proxy.WrongCaPath, InsecureSkipVerify = true }));

        Assert.Equal(20, records.Count);
    }

    [Fact]
    public async Task Mutual_tls_reads_with_a_client_certificate_and_fails_without_one()
    {
        var proxy = await ProxiedAsync(requireClientCertificate: true);

        var records = await ReadAllAsync(Options(proxy, new TlsOptions
        {
            Enabled = true,
            ServerCaPem = proxy.CaPath,
            CertPem = proxy.ClientCertPath,
            KeyPem = File.ReadAllText(proxy.ClientKeyPath),
        }));
        Assert.Equal(20, records.Count);
        Assert.DoesNotContain(_logs.Lines, l => l.Contains("PRIVATE KEY", StringComparison.Ordinal));

        await AssertHandshakeFailsAsync(
            Options(proxy, new TlsOptions { Enabled = true, ServerCaPem = proxy.CaPath }), "alert certificate required");
    }
}
