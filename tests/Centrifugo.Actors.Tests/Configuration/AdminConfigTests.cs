using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Configuration;

/// <summary>admin.address / admin.token validation (a DNS name used to pass and then crash Kestrel set-up).</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class AdminConfigTests
{
    [Theory]
    [InlineData("myhost:9110", "the host must be an IP address, localhost or 0.0.0.0")]
    [InlineData("pod-0.actors.svc:9110", "the host must be an IP address, localhost or 0.0.0.0")]
    [InlineData("0.0.0.0:9110", "token is required when address binds beyond loopback (0.0.0.0:9110)")]
    [InlineData("10.0.0.5:9110", "token is required when address binds beyond loopback")]
    [InlineData("[::]:9110", "token is required when address binds beyond loopback")]
    public void Unsafe_or_unbindable_admin_addresses_are_refused_at_start_up(string address, string expected)
    {
        var message = Cfg.Error($$$"""{"api":{"key":"k"},"admin":{"address":"{{{address}}}"}}""");
        Assert.StartsWith("in admin: ", message, StringComparison.Ordinal);
        Assert.Contains(expected, message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1:9110")]
    [InlineData("localhost:9110")]
    [InlineData("[::1]:9110")]
    public void Loopback_needs_no_token(string address) =>
        Assert.Equal("", Cfg.Load($$$"""{"api":{"key":"k"},"admin":{"address":"{{{address}}}"}}""").Admin.Token);

    [Fact]
    public void Beyond_loopback_works_with_a_token_from_the_environment_and_the_token_is_redacted()
    {
        var options = Cfg.Load("""{"api":{"key":"k"},"admin":{"address":"0.0.0.0:9110"}}""",
            ("CENTRIFUGO_ACTORS_ADMIN_TOKEN", "admin-S3cret-token-value"));
        Assert.Equal("admin-S3cret-token-value", options.Admin.Token);
        var json = ConfigLoader.ToRedactedJson(options);
        Assert.DoesNotContain("admin-S3cret-token-value", json, StringComparison.Ordinal);
        Assert.Contains("\"token\": \"***\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public void A_short_token_is_refused_without_echoing_it()
    {
        var message = Cfg.Error("""{"api":{"key":"k"},"admin":{"address":"0.0.0.0:9110","token":"short-S3cret"}}""");
        Assert.Equal("in admin: token must be at least 16 characters", message);
    }

    [Theory]
    [InlineData("127.0.0.1:9110", "127.0.0.1:9110")]
    [InlineData("localhost:9200", "127.0.0.1:9200")]
    [InlineData("[::1]:9110", "[::1]:9110")]
    public void The_address_is_read_once_into_the_endpoint_kestrel_binds(string address, string endpoint) =>
        Assert.Equal(System.Net.IPEndPoint.Parse(endpoint),
            Cfg.Load($$$"""{"api":{"key":"k"},"admin":{"address":"{{{address}}}"}}""").Admin.Endpoint);

    [Fact]
    public void An_empty_address_has_no_endpoint() =>
        Assert.Null(Cfg.Load("""{"api":{"key":"k"},"admin":{"address":""}}""").Admin.Endpoint);
}
