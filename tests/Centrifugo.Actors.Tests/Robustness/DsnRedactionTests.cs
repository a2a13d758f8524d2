using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>F15: passwords holding characters that end a URL's authority are still masked (check-config prints DSNs).</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class DsnRedactionTests
{
    [Theory]
    [InlineData("postgres://app:pa/ss@db/app", "postgres://app:***@db/app")]
    [InlineData("postgres://app:12/ss@db:5432/app?sslmode=disable", "postgres://app:***@db:5432/app?sslmode=disable")]
    [InlineData("postgres://app:pa#ss@db/app", "postgres://app:***@db/app")]
    [InlineData("postgres://app:pa?ss@db/app", "postgres://app:***@db/app")]
    [InlineData("postgres://app:p@ss@db/app", "postgres://app:***@db/app")]
    [InlineData("postgresql://app:se/cr#et?x@db/app?password=zz", "postgresql://app:***@db/app?password=***")]
    public void Passwords_with_slash_hash_question_mark_or_at_are_masked(string dsn, string expected)
    {
        var redacted = RedactedConfigWriter.RedactDsn(dsn);
        Assert.True(redacted == expected || redacted == "***", redacted);
        Assert.DoesNotContain("ss@", redacted.Replace("***@", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void The_password_never_survives_redaction()
    {
        foreach (var secret in new[] { "pa/ss", "12/34", "a#b", "x?y", "p@ss", "#", "1/" })
        {
            var redacted = PostgresDsn.Redact($"postgres://app:{secret}@db/app");
            Assert.DoesNotContain(secret, redacted, StringComparison.Ordinal);
        }
    }
}
